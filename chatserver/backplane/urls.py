"""The forms of `REDIS_URL`: one server, the master a Sentinel names, or a Redis Cluster."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

SINGLE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"

HostPort = tuple[str, int]


@dataclass(frozen=True)
class SentinelURL:
    """`redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name`; the
    credentials are the Redis master's."""

    sentinels: tuple[HostPort, ...]
    service: str
    username: str | None
    password: str | None


@dataclass(frozen=True)
class ClusterURL:
    """`redis+cluster://[[user]:password@]host:port[,host:port...]`: seed nodes of a Redis
    Cluster (any reachable one tells the client the rest); the credentials are the nodes'."""

    nodes: tuple[HostPort, ...]
    username: str | None
    password: str | None


def parse_sentinel_url(url: str) -> SentinelURL:
    """Raise `ValueError` with a one-line reason unless `url` is a Sentinel URL."""
    parts = _split(url, SENTINEL_SCHEME)
    service = parts.path.strip("/")
    if not service or "/" in service:
        raise ValueError("must end with /service_name, the master's name in Sentinel")
    return SentinelURL(_host_ports(parts), service, *_credentials(parts))


def parse_cluster_url(url: str) -> ClusterURL:
    """Raise `ValueError` with a one-line reason unless `url` is a Cluster URL."""
    parts = _split(url, CLUSTER_SCHEME)
    if parts.path.strip("/") or parts.query:
        raise ValueError("takes no path or query: a cluster has one database")
    return ClusterURL(_host_ports(parts), *_credentials(parts))


def is_sentinel_url(url: str) -> bool:
    return urlsplit(url).scheme == SENTINEL_SCHEME


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme == CLUSTER_SCHEME


def _split(url: str, scheme: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme != scheme:
        raise ValueError(f"must start with {scheme}://")
    return parts


def _host_ports(parts: SplitResult) -> tuple[HostPort, ...]:
    """The comma-separated `host:port` list after the credentials."""
    found = []
    for host_port in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{host_port!r} is not host:port")
        found.append((host, int(port)))
    return tuple(found)


def _credentials(parts: SplitResult) -> tuple[str | None, str | None]:
    return (unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None)
