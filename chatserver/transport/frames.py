"""What may arrive on the socket: checks of raw Engine.IO frames and Socket.IO packets.

python-socketio and python-engineio decode whatever a client sends and raise (and log
a traceback) deep inside their receive loops when it is not a packet they expect. The
checks here run first, so that a malformed frame is refused with one clear reason.
The contract's payloads are JSON: binary frames and attachments are refused too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import engineio.payload
import socketio.packet

# Engine.IO v4 packet types, open..noop (python-engineio ignores the rest); 4 is a message.
_ENGINE_TYPES = frozenset("0123456")
_MESSAGE = "4"
_SOCKETIO_TYPES = frozenset("0123456")
MAX_INT_DIGITS = 100  # as python-engineio: int() of longer digit strings is slow
_CONTROL_PAYLOAD = re.compile(r"[A-Za-z0-9]{0,16}")
# Socket.IO v5 packet types a client may send; binary ones are not part of the contract.
_CLIENT_PACKET_TYPES = frozenset({socketio.packet.CONNECT, socketio.packet.DISCONNECT,
                                  socketio.packet.EVENT, socketio.packet.ACK})


class MalformedPacket(ValueError):
    """A frame or packet that no Socket.IO client could have sent; the reason is one line."""


def check_engine_frame(frame: str | bytes) -> None:
    """Raise `MalformedPacket` unless `frame` is one text Engine.IO packet: a message
    holding a Socket.IO packet, or a control packet with at most a short word ("probe").

    python-engineio JSON-decodes any other payload; deep nesting there raises
    RecursionError at a depth that depends on the caller's stack, so it is refused here.
    """
    if isinstance(frame, bytes):
        raise MalformedPacket("binary frame (the protocol is JSON)")
    if not frame:
        raise MalformedPacket("empty frame")
    if frame[0] not in _ENGINE_TYPES:
        raise MalformedPacket("not an Engine.IO packet")
    if frame[0] == _MESSAGE:
        if len(frame) < 2 or frame[1] not in _SOCKETIO_TYPES:
            raise MalformedPacket("message without a Socket.IO packet")
    elif not _CONTROL_PAYLOAD.fullmatch(frame[1:]):
        raise MalformedPacket("control packet with a payload")


def check_polling_body(body: bytes) -> None:
    """Raise `MalformedPacket` unless `body` is a long-polling payload of text packets."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("payload is not UTF-8") from None
    if text.startswith("d="):
        raise MalformedPacket("JSONP payload")
    frames = text.split("\x1e") if text else []
    if len(frames) > engineio.payload.Payload.max_decode_packets:
        raise MalformedPacket("too many packets in one payload")
    for frame in frames:
        check_engine_frame(frame)


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError("integer too long")
    return int(digits)


_DECODER = json.JSONDecoder(parse_int=_bounded_int)


class _ReusedDecoderJSON:
    """The JSON module for packets (and python-socketio's pub/sub messages, which take the
    packet class's): python-engineio's rule (integers of at most 100 digits), with one
    decoder for all. `json.loads` with options builds a new decoder per call, which was a
    seventh of the server's time under many senders (py-spy)."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(text: str | bytes) -> Any:
        return _DECODER.decode(text.decode() if isinstance(text, bytes | bytearray) else text)


class StrictPacket(socketio.packet.Packet):  # type: ignore[misc]
    """A Socket.IO packet that decodes only what a client may send: connect with an
    auth object, disconnect, an event with a name, or an ack; never binary."""

    # Outgoing packets are JSON: skip the recursive scan for bytes when this server builds
    # one (python-socketio's pub/sub path still scans once per message, with its own class).
    uses_binary_events = False
    json = _ReusedDecoderJSON

    def decode(self, encoded_packet: Any) -> int:
        """Decode, or raise `MalformedPacket` with the reason."""
        try:
            attachments: int = super().decode(encoded_packet)
        except (ValueError, TypeError, RecursionError) as error:
            raise MalformedPacket(f"undecodable Socket.IO packet ({type(error).__name__})") from None
        if self.packet_type not in _CLIENT_PACKET_TYPES:  # binary ones, the only ones with attachments
            raise MalformedPacket(f"packet type {self.packet_type!r} is not accepted from clients")
        if self.packet_type == socketio.packet.EVENT and not _is_event(self.data):
            raise MalformedPacket("an event must be a list starting with its name")
        if self.packet_type == socketio.packet.ACK and not isinstance(self.data, list):
            raise MalformedPacket("an ack must be a list")
        if self.packet_type == socketio.packet.CONNECT and not isinstance(self.data, dict | None):
            raise MalformedPacket("connect data must be an object")
        return attachments


def _is_event(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], str)
