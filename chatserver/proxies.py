"""Client addresses behind a reverse proxy: believe X-Forwarded-For from trusted proxies only."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp_remotes import XForwardedFiltered
from aiohttp_remotes.exceptions import RemoteError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def forwarded_for(trusted_proxies: tuple[str, ...]) -> Middleware:
    """A middleware giving `request.remote` the client's address as the trusted proxy saw it.

    aiohttp-remotes picks the right-most X-Forwarded-For address that is not a trusted
    proxy (so a client cannot forge its way past one). It does not check who sent the
    header, so a request straight from a client keeps its own peer address here.
    """
    networks = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]
    headers_reader = XForwardedFiltered(set(networks))

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine, nor aiohttp-remotes' middleware, which is one: their frames
        # would live as long as each WebSocket does.
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer and any(ipaddress.ip_address(peer[0]) in network for network in networks):
            return handler(as_forwarded(request, networks, headers_reader))
        return handler(request)

    return middleware


def as_forwarded(request: web.Request, networks: list[Network], headers_reader: XForwardedFiltered) -> web.Request:
    """`request` with the client's address, scheme and host as the trusted proxy saw them:
    what aiohttp-remotes 1.4's `XForwardedFiltered.middleware` hands its handler.
    `HTTPBadRequest` for headers it refuses."""
    try:
        headers = request.headers
        chain = list(reversed(headers_reader.get_forwarded_for(headers)))
        if not chain:
            return request
        # the right-most address that is not a trusted proxy; if all are, the left-most
        index = next((n for n, ip in enumerate(chain) if not any(ip in network for network in networks)), -1)
        overrides: dict[str, Any] = {"remote": str(chain[index])}
        # Some proxies keep one X-Forwarded-Proto (or -Host) entry only: then that one counts.
        proto = list(reversed(headers_reader.get_forwarded_proto(headers)))
        if proto:
            index = -1 if index >= len(proto) else index
            overrides["scheme"] = proto[index]
        host = list(reversed(headers_reader.get_forwarded_host(headers)))
        if host:
            index = -1 if index >= len(host) else index
            overrides["host"] = host[index]
        return request.clone(**overrides)
    except RemoteError as error:
        error.log(request)
        raise web.HTTPBadRequest() from None
