"""The managers' index of each connection's rooms, and its room of its own, agree with what
python-socketio's own manager answers."""

from __future__ import annotations

import socketio
from socketio.base_manager import BaseManager

from chatserver.transport import ChatManager

NS = "/chat"


def connect(manager: BaseManager, sid: str, eio_sid: str) -> None:
    """As python-socketio's `pre_connect`, with a sid of our choosing."""
    manager.basic_enter_room(sid, NS, None, eio_sid=eio_sid)
    manager.basic_enter_room(sid, NS, sid, eio_sid=eio_sid)


def play(manager: BaseManager) -> list[object]:
    """The same steps on either manager, and what it answers along the way."""
    answers: list[object] = []

    def look() -> None:
        answers.append({sid: set(manager.get_rooms(sid, NS)) for sid in ("a", "b")})
        answers.append([sorted(manager.get_participants(NS, room))
                        for room in ("a", "b", "room:x", "room:y", "nobody", ("a", "room:x"), ["room:y", "b"])])

    for sid, eio in (("a", "ea"), ("b", "eb")):
        connect(manager, sid, eio)
    for room in ("room:x", "room:y"):
        manager.basic_enter_room("a", NS, room)
    manager.basic_enter_room("b", NS, "room:x")
    manager.callbacks["a"] = {}
    look()
    manager.basic_leave_room("a", NS, "room:y")
    manager.basic_close_room("room:x", NS)
    look()
    manager.basic_disconnect("a", NS)
    look()
    answers.append(("a" in manager.callbacks, manager.is_connected("a", NS), manager.is_connected("b", NS)))
    return answers


def test_the_index_and_own_rooms_answer_as_python_socketio_does():
    ours, theirs = ChatManager(), socketio.AsyncManager()
    assert play(ours) == play(theirs)
    assert play(ChatManager())[0] == {"a": {"a", "room:x", "room:y"}, "b": {"b", "room:x"}}


def test_no_room_is_stored_for_a_connection_alone():
    manager = ChatManager()
    connect(manager, "a", "ea")
    assert set(manager.rooms[NS]) == {None}
    assert list(manager.get_participants(NS, "a")) == [("a", "ea")]


async def play_pending(manager: socketio.AsyncManager) -> list[object]:
    """Connections connecting and disconnecting, as python-socketio's manager steps them."""
    for sid, eio in (("a", "ea"), ("b", "eb"), ("c", "ec")):
        connect(manager, sid, eio)
    manager.pending_connect[NS] = []  # as `pre_connect` does for a namespace's first
    for sid in "abc":
        manager.pending_connect[NS].append(sid)
    await manager.connect("b", NS)  # b's connect handler accepted it
    answers: list[object] = [[(manager.is_connected(sid, NS), manager.is_pre_connected(sid, NS)) for sid in "abc"]]
    await manager.connect("a", NS)
    await manager.connect("c", NS)
    manager.pre_disconnect("a", NS)
    answers.append([manager.is_connected(sid, NS) for sid in "abc"])
    manager.basic_disconnect("a", NS)
    answers.append(([manager.is_connected(sid, NS) for sid in "abc"], NS in manager.pending_connect,
                    NS in manager.pending_disconnect))
    return answers


async def test_connections_pending_connect_or_disconnect_answer_as_python_socketio_does():
    ours = ChatManager()
    assert await play_pending(ours) == await play_pending(socketio.AsyncManager())
    assert (await play_pending(ChatManager()))[0] == [(False, True), (True, False), (False, True)]
    ours.pending_disconnect[NS] = ["x"]  # kept as a set: `in` does not scan
    assert type(ours.pending_disconnect[NS]).__name__ == "SidSet" and "x" in ours.pending_disconnect[NS]
