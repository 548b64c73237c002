"""Which browser origins may open a Socket.IO connection or call the API."""

from __future__ import annotations

from collections.abc import Mapping


class OriginPolicy:
    """Same origin always; other origins only when configured (`*` admits all)."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self._any = "*" in allowed
        self._allowed = frozenset(origin.rstrip("/") for origin in allowed if origin != "*")

    def allows(self, origin: str | None, scheme: str, host: str | None,
               forwarded_proto: str | None = None, forwarded_host: str | None = None) -> bool:
        """True when a request from `origin` to `host` may proceed.

        No `Origin` header means no browser cross-origin request (bots, mobile apps).
        The forwarded headers count too, so a TLS-terminating proxy keeps same-origin working.
        """
        if origin is None or self._any or origin in self._allowed:
            return True
        schemes = {scheme, _first(forwarded_proto) or scheme}
        hosts = {host, _first(forwarded_host) or host} - {None}
        return origin in {f"{s}://{h}" for s in schemes for h in hosts}

    def for_engineio(self, origin: str | None, environ: Mapping[str, str]) -> bool:
        """The callable form `cors_allowed_origins` of python-engineio accepts."""
        return self.allows(origin, environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST"),
                           environ.get("HTTP_X_FORWARDED_PROTO"), environ.get("HTTP_X_FORWARDED_HOST"))


def _first(header: str | None) -> str | None:
    return header.split(",")[0].strip() if header else None
