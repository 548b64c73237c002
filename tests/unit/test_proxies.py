"""`as_forwarded` rewrites a request as aiohttp-remotes' `XForwardedFiltered` middleware does."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp_remotes import XForwardedFiltered

from chatserver.proxies import as_forwarded

NETWORKS = [ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.0/8")]
HEADERS: list[dict[str, str]] = [
    {},
    {"X-Forwarded-For": "1.2.3.4"},
    {"X-Forwarded-For": "1.2.3.4, 10.0.0.7"},
    {"X-Forwarded-For": "6.6.6.6, 1.2.3.4, 10.0.0.7", "X-Forwarded-Proto": "https"},
    {"X-Forwarded-For": "10.0.0.9, 10.0.0.7", "X-Forwarded-Proto": "http, https", "X-Forwarded-Host": "chat.example"},
    {"X-Forwarded-For": "2001:db8::1, 10.0.0.7", "X-Forwarded-Host": "a.example, b.example"},
    {"X-Forwarded-For": "not an address"},
]


async def seen_by_aiohttp_remotes(headers: dict[str, str]) -> Any:
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return web.Response()

    try:
        await XForwardedFiltered(set(NETWORKS)).middleware(make_mocked_request("GET", "/", headers=headers), handler)
    except web.HTTPBadRequest:
        return "refused"
    return (seen[0].remote, seen[0].scheme, seen[0].host)


@pytest.mark.parametrize("headers", HEADERS)
async def test_the_same_address_scheme_and_host_as_aiohttp_remotes(headers: dict[str, str]) -> None:
    reader = XForwardedFiltered(set(NETWORKS))
    try:
        request = as_forwarded(make_mocked_request("GET", "/", headers=headers), NETWORKS, reader)
        ours: Any = (request.remote, request.scheme, request.host)
    except web.HTTPBadRequest:
        ours = "refused"
    assert ours == await seen_by_aiohttp_remotes(headers)
