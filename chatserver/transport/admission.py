"""Admission: what a request must be before python-engineio sees it, and how many
connections one address may hold."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from aiohttp import web
from engineio.async_drivers import aiohttp as engineio_aiohttp

from ..errors import InvalidPayload, RateLimited, TooLarge
from ..http_errors import error_response
from .frames import MalformedPacket, check_polling_body

log = logging.getLogger(__name__)
RETRY_AFTER_FULL = 10  # seconds a refused handshake is told to wait
# The Engine.IO endpoint's methods: GET and POST carry sessions, OPTIONS answers CORS preflights.
ENGINE_METHODS = frozenset({"GET", "POST", "OPTIONS"})


class Admission:
    """`GuardedEngineServer`'s admission (a mixin over python-engineio's `AsyncServer`):
    requests the specification refuses get `400`; a handshake past the per-address cap
    `429 rate_limited`, a malformed or oversized polling body the contract's JSON error;
    the connections of each address are counted from connect to disconnect."""

    sockets: dict[str, Any]
    transports: list[str]
    max_http_buffer_size: int

    def __init__(self, *, max_connections_per_address: int, **options: Any) -> None:
        super().__init__(**options)
        self.max_connections_per_address = max_connections_per_address
        self._addresses: dict[str, str] = {}  # sid -> client address
        self._per_address: Counter[str] = Counter()

    if TYPE_CHECKING:  # the server's (`GuardedEngineServer`)
        async def close_connection(self, sid: str, reason: str, *, abort: bool = False) -> None: ...

    def admitted(self, sid: str, request: web.BaseRequest) -> None:
        """A session opened for `request`: count it against its address."""
        self._addresses[sid] = _address(request)
        self._per_address[self._addresses[sid]] += 1

    def released(self, sid: str) -> None:
        """A session ended: its address may open another."""
        address = self._addresses.pop(sid, None)
        if address is not None:
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]

    def address_of(self, sid: str) -> str | None:
        return self._addresses.get(sid)

    async def _refusal(self, request: web.Request) -> web.StreamResponse | None:
        sid = request.query.get("sid")
        if request.method not in ENGINE_METHODS:
            return _bad_request(f"method {request.method} is not used by Engine.IO")
        if request.method != "OPTIONS" and request.query.get("transport") not in self.transports:
            return _bad_request("Transport unknown")
        if sid is not None and request.method == "GET" and await self._second_poll(sid, request):
            return _bad_request("a poll is already pending for this session")
        address = _address(request)
        if sid is None and self._per_address[address] >= self.max_connections_per_address:
            log.warning("connection refused", extra={"address": address, "open": self._per_address[address]})
            refusal = error_response(RateLimited(RETRY_AFTER_FULL, "too many connections from your address"))
            refusal.headers["Retry-After"] = str(RETRY_AFTER_FULL)
            return refusal
        if sid is not None and request.method == "POST":
            try:
                check_polling_body(await request.read())
            except web.HTTPRequestEntityTooLarge:
                await self.close_connection(sid, "polling body over the size limit")
                return error_response(TooLarge(f"a request body may hold at most {self.max_http_buffer_size} bytes"))
            except MalformedPacket as error:
                await self.close_connection(sid, f"malformed payload: {error}")
                return error_response(InvalidPayload("not an Engine.IO payload"))
        return None

    async def _second_poll(self, sid: str, request: web.Request) -> bool:
        """Whether this GET is a poll while another one of the session waits; if so, the
        session is closed (the pending poll is answered with a close packet), as the
        specification says: a client that polls twice has lost track of its session."""
        socket = self.sockets.get(sid)
        if socket is None or socket.upgraded or "upgrade" in request.headers.get("Connection", "").lower():
            return False
        if not socket.queue.getter_waiting:
            return False
        await self.close_connection(sid, "a second poll while one was pending")
        return True

    def _forget_if_closed(self, sid: str | None) -> None:
        """A session that the request closed (a client's close packet in a POST, say) is
        gone at once: its next request gets `400`, as the specification says, and nothing
        keeps it until the next sweep. A poll it had pending keeps its own reference and is
        answered from its queue."""
        if sid is not None:
            socket = self.sockets.get(sid)
            if socket is not None and socket.closed:
                del self.sockets[sid]


async def translate_request(request: web.Request) -> dict[str, Any]:
    """Engine.IO's environ for `request`, reading the body from aiohttp's cache, since
    `handle_request` has already read it to check it."""
    environ: dict[str, Any] = engineio_aiohttp.translate_request(request)
    environ["wsgi.input"] = _ReadBody(request)
    return environ


class _ReadBody:
    """The `wsgi.input` Engine.IO reads a polling body from."""

    def __init__(self, request: web.Request) -> None:
        self._request = request

    async def read(self, length: int = -1) -> bytes:
        return await self._request.read()


def _address(request: web.BaseRequest) -> str:
    return request.remote or "unknown"


def _bad_request(message: str) -> web.Response:
    """`400`, with the message as python-engineio words its own."""
    return web.Response(status=400, text=json.dumps(message), content_type="text/plain")
