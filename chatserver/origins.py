"""Which browser origins may open a Socket.IO connection or call the API."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .errors import Forbidden
from .http_errors import error_response

PREFLIGHT_MAX_AGE = 600


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

    def allows_request(self, request: web.BaseRequest) -> bool:
        """`allows` for an aiohttp request."""
        headers = request.headers
        return self.allows(headers.get("Origin"), request.scheme, request.host,
                           headers.get("X-Forwarded-Proto"), headers.get("X-Forwarded-Host"))

    def for_engineio(self, origin: str | None, environ: Mapping[str, str]) -> bool:
        """The callable form `cors_allowed_origins` of python-engineio accepts."""
        return self.allows(origin, environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST"),
                           environ.get("HTTP_X_FORWARDED_PROTO"), environ.get("HTTP_X_FORWARDED_HOST"))


def _first(header: str | None) -> str | None:
    return header.split(",")[0].strip() if header else None


def api_cross_origin(policy: OriginPolicy) -> Middleware:
    """CORS for /api/: an allowed origin gets the headers a browser needs (preflight
    included); any other origin is refused `403 forbidden` before the handler runs."""

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Other requests go straight to their handler, without a coroutine frame of this
        # middleware's (which would live as long as each WebSocket does).
        origin = request.headers.get("Origin")
        if origin is None or not request.path.startswith("/api/"):
            return handler(request)
        return cross_origin(request, handler, origin)

    async def cross_origin(request: web.Request, handler: Handler, origin: str) -> web.StreamResponse:
        if not policy.allows_request(request):
            return error_response(Forbidden(f"the origin {origin} may not call this API"))
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers.update({"Access-Control-Allow-Methods": "GET, POST",
                                     "Access-Control-Allow-Headers": "Authorization, Content-Type",
                                     "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE)})
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
        return response

    return middleware
