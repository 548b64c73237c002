"""What both client managers add to python-socketio's: a connection's rooms kept at hand,
and emits delivered through `GuardedEngineServer.deliver`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import socketio

from .fanout import UserEventHandler, user_room

if TYPE_CHECKING:
    from .server import ChatSocketServer


class DirectEmit:
    """Emits without an acknowledgement, to a room or one connection, go through
    `GuardedEngineServer.deliver`: one encode, no task or queue hop per recipient.

    An event delivered to a user's room is then handed to each of `user_events` with the
    user and the connections it reached here, for the service to act on (close them, or
    take them out of a room)."""

    server: ChatSocketServer
    get_participants: Any
    user_events: tuple[UserEventHandler, ...] = ()

    def _deliver(self, event: str, each_args: list[list[Any]], namespace: str, room: str | None,
                 skip_sid: str | list[str] | None = None) -> None:
        """Deliver `event` once per argument list in `each_args`, in order, in this step;
        recipients past their backlog bound are cut off afterwards."""
        if not each_args:  # all held back for order
            return
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        eio_sids = [eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip]
        if not eio_sids:
            return
        over: list[str] = []
        for args in each_args:
            packet = self.server.packet_class(socketio.packet.EVENT, namespace=namespace, data=[event, *args])
            over += self.server.eio.deliver(eio_sids, packet.encode())
        self.server.eio.cut_off(over)
        user = user_room(room) if self.user_events and room is not None else None
        if user is not None:  # a user's few connections: looked up again rather than on every room's path
            reached = [sid for sid, _ in self.get_participants(namespace, room) if sid not in skip]
            for args in each_args:
                for handler in self.user_events:
                    handler(user, event, args[0] if args else None, reached)


class SidSet(dict[str, None]):
    """The connections of a namespace that are connecting (or disconnecting), in order: the
    list python-socketio keeps them in (`append`, `remove`, `in`, `len`), as a set."""

    def append(self, sid: str) -> None:
        self[sid] = None

    def remove(self, sid: str) -> None:
        del self[sid]


class PendingSids(dict[str, SidSet]):
    """python-socketio's `pending_connect` / `pending_disconnect`: namespace -> connections.
    It stores a new namespace's as a list, and every emit and join asks whether a connection
    is in it: with 10,000 clients reconnecting at once each question scanned a list of
    thousands (`is_connected` was the top entry of a reconnect storm's profile, bench/).
    A list stored here is kept as a `SidSet`."""

    def __setitem__(self, namespace: str, sids: list[str] | SidSet) -> None:
        super().__setitem__(namespace, sids if isinstance(sids, SidSet) else SidSet((sid, None) for sid in sids))


class IndexedRooms:
    """Keeps each connection's rooms at hand, and answers for its room of its own.

    python-socketio's manager finds a connection's rooms by scanning every room of the
    namespace, after copying the whole mapping, and every connection has a room of its
    own: a disconnect cost O(connections), so 10,000 clients dropping at once (a network
    blip, a balancer restart) cost O(n^2) and stalled the instance (py-spy, bench/
    connections scenario).

    That room of its own (named by the sid, for emits to one connection) is a two-way dict
    per connection there, about 0.5 KiB; here it is not stored, and the `None` room, which
    maps every connected sid to its Engine.IO sid, answers for it. A connection's named
    rooms are a tuple (a connection is in a few; an empty set alone takes 0.2 KiB).
    """

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: PendingSids
    pending_disconnect: PendingSids

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[str, dict[str, tuple[str, ...]]] = {}  # namespace -> sid -> named rooms
        self.pending_connect = PendingSids()
        self.pending_disconnect = PendingSids()

    def basic_enter_room(self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None) -> None:
        if room == sid:  # its own room: see `get_participants`
            return
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        if room is not None:
            of_namespace = self._rooms_of.setdefault(namespace, {})
            rooms = of_namespace.get(sid, ())
            if room not in rooms:
                of_namespace[sid] = (*rooms, room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        of_namespace = self._rooms_of.get(namespace, {})
        rooms = of_namespace.get(sid, ())
        if room in rooms:
            rest = tuple(other for other in rooms if other != room)
            if rest:
                of_namespace[sid] = rest
            else:
                del of_namespace[sid]

    def get_participants(self, namespace: str, room: Any) -> Iterator[tuple[str, str]]:
        """As python-socketio's: (sid, eio_sid) of each connection in `room`, or in any of
        several rooms; a sid names the room of that connection alone."""
        in_namespace = self.rooms.get(namespace, {})
        if room is None or isinstance(room, str):
            members = in_namespace.get(room)
            if members is not None:  # the common case: one named room
                yield from members._fwdm.copy().items()
                return
        participants: dict[str, str] = {}
        for name in ((room,) if room is None or isinstance(room, str) else room):
            members = in_namespace.get(name)
            if members is not None:
                participants.update(members._fwdm)
            elif name is not None and name in in_namespace.get(None, ()):
                participants[name] = in_namespace[None][name]
        yield from participants.items()

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        """As python-socketio's: the connection's own room (named by its sid) and the rooms it entered."""
        own = [sid] if sid in self.rooms.get(namespace, {}).get(None, ()) else []
        return own + list(self._rooms_of.get(namespace, {}).get(sid, ()))

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio 5.18.1's, with the scan replaced by the index.
        for room in self._rooms_of.get(namespace, {}).get(sid, ()):
            self.basic_leave_room(sid, namespace, room)
        self.basic_leave_room(sid, namespace, None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]
