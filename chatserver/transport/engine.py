"""python-engineio's server, hosting each WebSocket session and closing sessions; with the
admission (`admission`), delivery (`delivery`) and heartbeat (`heartbeat`) of this package."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import engineio
from aiohttp import web

from .admission import Admission, translate_request
from .delivery import Delivery
from .heartbeat import Heartbeat
from .websocket import CheckedWebSocket
from .websocket_session import serve_websocket

log = logging.getLogger(__name__)


class GuardedEngineServer(Admission, Delivery, engineio.AsyncServer):  # type: ignore[misc]
    """`engineio.AsyncServer` that checks frames before decoding them, bounds what waits
    for each client, and caps connections per address; takes `max_backlog`,
    `max_backlog_bytes` and `max_connections_per_address` besides python-engineio's options."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.heartbeat = Heartbeat(self.ping_interval, self.ping_timeout, socket_of=lambda sid: self.sockets.get(sid),
                                   ping=self._ping, close_silent=self._close_silent)
        self._async: dict[str, Any] = {**self._async, "websocket": CheckedWebSocket,
                                       "translate_request": translate_request}

    def attach(self, app: web.Application, engineio_path: str = "engine.io") -> None:
        """As python-engineio's, and every other method on the same path comes here too,
        to be answered `400` as the specification says (aiohttp would answer `405`)."""
        super().attach(app, engineio_path)
        app.router.add_route("*", f"/{engineio_path.strip('/')}/", self.handle_request)

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        """Refuse a handshake past the per-address cap and a malformed or oversized
        polling body with the contract's JSON error; Engine.IO handles the rest.

        A WebSocket's session runs here, once python-engineio's calls that opened it
        have returned: an idle connection holds its handler's coroutine frames as long as
        it lives, and those calls (and the environ and query they hold) would be six of
        them (see `CheckedWebSocket`)."""
        refusal = await self._refusal(request)
        if refusal is not None:
            return refusal
        response: web.StreamResponse | CheckedWebSocket = await super().handle_request(request)
        if not isinstance(response, CheckedWebSocket):
            self._forget_if_closed(request.query.get("sid"))
            return response
        socket, sid = response.socket, response.socket.sid
        self._websockets[sid] = response
        try:
            await serve_websocket(socket, response)
        finally:
            if self._websockets.get(sid) is response:  # not a concurrent upgrade attempt's
                del self._websockets[sid]
            # as python-engineio does once its WebSocket handler returns
            if socket.closed and self.sockets.get(sid) is socket:
                del self.sockets[sid]
        return response.response

    def _ok(self, packets: Any = None, headers: Any = None, jsonp_index: Any = None) -> dict[str, Any]:
        """python-engineio's answer to a request; to a POST, `ok` as the specification has it
        (python-engineio says `OK`)."""
        if packets is not None:
            answer: dict[str, Any] = super()._ok(packets, headers, jsonp_index)
            return answer
        return {"status": "200 OK", "headers": [("Content-Type", "text/plain")], "response": b"ok"}

    async def close_connection(self, sid: str, reason: str, *, abort: bool = False) -> None:
        """Close one client's connection now, logging `reason` once.

        With `abort`, a WebSocket's TCP connection is dropped without a goodbye: for a
        client that does not read, a close frame would only wait behind everything else.
        """
        socket = self.sockets.get(sid)
        if socket is None or socket.closing or socket.closed:
            return
        self.log_closing(sid, reason)
        await self._close(socket, abort=abort)

    def log_closing(self, sid: str, reason: str) -> None:
        """The one warning line for a connection the server closes on the client's account."""
        log.warning("closing connection", extra={"sid": sid, "address": self.address_of(sid), "reason": reason})

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """As python-engineio's, except for its ping cycle: there a task per connection
        sleeps `ping_interval` and then sends a ping; here `heartbeat` does it for all."""
        if getattr(target, "__func__", None) is engineio.async_socket.AsyncSocket._send_ping:
            self.heartbeat.schedule_ping(target.__self__.sid)
            return None
        return super().start_background_task(target, *args, **kwargs)

    async def _close_silent(self, sockets: list[Any]) -> None:
        """Close the connections of clients that left a ping unanswered (see `Heartbeat`)."""
        for socket in sockets:
            log.info("client gone: ping unanswered", extra={"sid": socket.sid,
                                                             "address": self.address_of(socket.sid)})
        outcomes = await asyncio.gather(*(self._close(socket, abort=True, reason=self.reason.PING_TIMEOUT)
                                          for socket in sockets), return_exceptions=True)
        for socket, outcome in zip(sockets, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.warning("closing a silent client failed", extra={"sid": socket.sid, "error": repr(outcome)})

    async def close_all(self) -> int:
        """Close every connection (clients reconnect elsewhere); the number closed."""
        sockets = [socket for socket in self.sockets.values() if not (socket.closing or socket.closed)]
        # Together: each close says goodbye to the store (presence), a round trip in Redis.
        await asyncio.gather(*(self._close(socket, abort=False) for socket in sockets))
        return len(sockets)

    async def _close(self, socket: Any, *, abort: bool, reason: str | None = None) -> None:
        """End a session: its disconnect handlers run, a pending poll is answered with a
        close packet, and a WebSocket is closed after one (with `abort`, dropped at once)."""
        websocket = self._websockets.get(socket.sid)
        if abort and websocket is not None:
            websocket.abort()
        # Not `disconnect()`: it waits for the queue to drain, forever for a client that
        # has stopped reading. And the close packet is queued here, not by `close`, whose
        # `send` drops it for a client past its ping timeout.
        await socket.close(wait=False, abort=True, reason=reason or self.reason.SERVER_DISCONNECT)
        if not abort or websocket is None:
            socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.CLOSE))
        # python-engineio keeps a WebSocket open until the client speaks, and the JS client
        # only acts on the socket closing: an empty queue entry makes the socket's writer
        # close the WebSocket now, and ends a poll with what is queued.
        socket.queue.put_nowait(None)

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            sid, environ = args[0], args[1]
            self.admitted(sid, environ["aiohttp.request"])
            self._announce_exact_ping_interval(self.sockets[sid])
        elif event == "disconnect":
            sid, reason = args[0], args[1]
            self.released(sid)
            if reason == self.reason.CLIENT_DISCONNECT and sid not in self._websockets:
                self._end_poll(self.sockets.get(sid))
        return await super()._trigger_event(event, *args, **kwargs)

    def _announce_exact_ping_interval(self, socket: Any) -> None:
        """python-engineio announces `pingInterval` in whole seconds (2.5 s as 2000 ms); the
        handshake, the one packet queued when the session's connect handler runs, is
        corrected to the interval `heartbeat` keeps."""
        opened = socket.queue.first()
        if opened is not None and opened.packet_type == engineio.packet.OPEN:
            opened.data["pingInterval"] = round(self.ping_interval * 1000)

    @staticmethod
    def _end_poll(socket: Any) -> None:
        """A polling client sent its close packet: python-engineio ends the session without
        a word, so a poll it has pending would wait out the ping timeout. It is answered
        with a noop, as the specification says (the client is leaving; nothing more is sent)."""
        if socket is not None:
            socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.NOOP))
            socket.queue.put_nowait(None)


