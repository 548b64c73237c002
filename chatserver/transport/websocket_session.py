"""An Engine.IO session over one WebSocket: python-engineio's handler, with one task fewer
per frame read and two fewer per connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from aiohttp import WSMessage
from engineio import exceptions, packet

log = logging.getLogger(__name__)


class SessionWebSocket(Protocol):
    """What the session needs of the WebSocket (`CheckedWebSocket`).

    The next frame is `frame(await receive())`: awaited by the session itself, not in a
    coroutine of the WebSocket's, whose frame an idle connection would hold as well."""

    def receive(self) -> Awaitable[WSMessage]: ...
    def frame(self, message: WSMessage) -> str | bytes:
        """The message's Engine.IO frame; `OSError` (the end of the session) if there is none."""
        ...
    async def send(self, message: str | bytes) -> None: ...
    async def close(self) -> None: ...


async def serve_websocket(socket: Any, ws: SessionWebSocket) -> None:
    """python-engineio 4.15.1's `AsyncSocket._websocket_handler`, step for step, except how
    it waits.

    There, each frame read is a new task awaited through `asyncio.wait_for` (whose timeout,
    `ping_interval + ping_timeout`, ends a silent client's session), and the writer task
    waits on its queue through `wait_for` too (another task): per idle connection three
    tasks besides this one and the ping's, and a task and a timer per frame read. Here
    frames are read in this coroutine with no timer, and the writer is a task only while
    something is queued (`PacketQueue.drain_into`); a client that stops answering pings
    is closed by `Heartbeat` instead, which ends the read and so puts the `None` that
    ends the writing. And a session that the client's close packet ended ends its
    WebSocket too: python-engineio reads on, keeping a socket no session counts.
    `socket` is python-engineio's `AsyncSocket`.
    """
    server = socket.server
    if socket.connected:  # the socket was already connected over polling: this is an upgrade
        if not await _upgraded(socket, ws):
            return
    else:
        socket.connected = True
        socket.upgraded = True

    socket.queue.drain_into(_write, ws)
    server.logger.info("%s: Upgrade to websocket successful", socket.sid)
    while True:
        try:
            frame = ws.frame(await ws.receive())
        except (asyncio.CancelledError, OSError):  # as python-engineio: end the session
            break
        try:
            await socket.receive(packet.Packet(encoded_packet=frame))
        except exceptions.UnknownPacketError:
            pass
        except exceptions.SocketIsClosedError:
            server.logger.info("Receive error -- socket is closed")
            break
        except Exception:  # as python-engineio: log it, and go on with the session
            server.logger.exception("Unknown receive error")
        if socket.closed:  # the client's close packet (python-engineio would read on)
            break

    await socket.queue.put(None)  # the writer sends what is queued, and closes the WebSocket
    await socket.queue.drained()
    await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def _upgraded(socket: Any, ws: SessionWebSocket) -> bool:
    """The polling-to-WebSocket upgrade handshake (probe ping, pong, upgrade), as python-engineio's,
    except that the noop ending a pending poll is sent only to a poll that is pending: with
    none, python-engineio's noop would be the first packet over the WebSocket, where the
    specification has the client's next message follow the upgrade directly. (A poll that
    comes later during the upgrade is answered with a noop by python-engineio itself.)"""
    socket.upgrading = True  # hold packet sends during the upgrade
    try:
        probe = packet.Packet(encoded_packet=ws.frame(await ws.receive()))
    except OSError:
        socket.upgrading = False
        return False
    if probe.packet_type != packet.PING or probe.data != "probe":
        socket.server.logger.info("%s: Failed websocket upgrade, no PING packet", socket.sid)
        socket.upgrading = False
        return False
    await ws.send(packet.Packet(packet.PONG, data="probe").encode())
    if socket.queue.getter_waiting:  # end the pending poll; python-engineio queues this noop
        await socket.queue.put(packet.Packet(packet.NOOP))  # even with none, for the WebSocket
    try:
        upgrade = packet.Packet(encoded_packet=ws.frame(await ws.receive()))
    except OSError:
        socket.upgrading = False
        return False
    if upgrade.packet_type != packet.UPGRADE:
        socket.upgraded = False
        socket.server.logger.info("%s: Failed websocket upgrade, expected UPGRADE packet", socket.sid)
        socket.upgrading = False
        return False
    socket.upgraded = True
    socket.upgrading = False
    return True


async def _write(ws: SessionWebSocket, packets: list[Any]) -> bool:
    """Send queued packets in order, up to a `None` or a failed send; then close the
    WebSocket and return False, for nothing more to be sent. (`GuardedEngineServer.deliver`
    writes past the queue while nothing is queued or being sent.)"""
    ending = None in packets
    if ending:
        packets = packets[:packets.index(None)]
    try:
        for pkt in packets:
            await ws.send(pkt.encode())
    except Exception:  # as python-engineio: a failed send ends the session's writing
        ending = True
    if ending:
        await ws.close()
    return not ending
