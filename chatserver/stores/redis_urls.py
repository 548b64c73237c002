"""The forms of `REDIS_URL`: one server, or the master a Sentinel names."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SINGLE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelURL:
    """`redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name`; the
    credentials are the Redis master's."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    username: str | None
    password: str | None


def parse_sentinel_url(url: str) -> SentinelURL:
    """Raise `ValueError` with a one-line reason unless `url` is a Sentinel URL."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"must start with {SENTINEL_SCHEME}://")
    service = parts.path.strip("/")
    if not service or "/" in service:
        raise ValueError("must end with /service_name, the master's name in Sentinel")
    sentinels = []
    for host_port in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{host_port!r} is not host:port")
        sentinels.append((host, int(port)))
    return SentinelURL(tuple(sentinels), service, unquote(parts.username) if parts.username else None,
                       unquote(parts.password) if parts.password else None)


def is_sentinel_url(url: str) -> bool:
    return urlsplit(url).scheme == SENTINEL_SCHEME
