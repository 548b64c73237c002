"""Client addresses behind a reverse proxy: believe X-Forwarded-For from trusted proxies only."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_remotes import XForwardedFiltered

from .api import Handler


def forwarded_for(trusted_proxies: tuple[str, ...]) -> Middleware:
    """A middleware giving `request.remote` the client's address as the trusted proxy saw it.

    aiohttp-remotes picks the right-most X-Forwarded-For address that is not a trusted
    proxy (so a client cannot forge its way past one). It does not check who sent the
    header, so a request straight from a client keeps its own peer address here.
    """
    networks = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]
    from_proxy = XForwardedFiltered(set(networks))

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # No coroutine frame of its own (which would live as long as each WebSocket does).
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer and any(ipaddress.ip_address(peer[0]) in network for network in networks):
            response: Awaitable[web.StreamResponse] = from_proxy.middleware(request, handler)
            return response
        return handler(request)

    return middleware
