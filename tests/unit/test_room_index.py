"""The managers' index of each connection's rooms agrees with python-socketio's own scan."""

from __future__ import annotations

import socketio
from socketio.base_manager import BaseManager

from chatserver.transport import ChatManager

NS = "/chat"


def rooms_by_scan(manager: ChatManager, sid: str) -> set[str]:
    return set(BaseManager.get_rooms(manager, sid, NS))


def test_the_index_follows_enter_leave_close_and_disconnect():
    manager = ChatManager()
    for sid, eio in (("a", "ea"), ("b", "eb")):
        manager.basic_enter_room(sid, NS, None, eio_sid=eio)
        manager.basic_enter_room(sid, NS, sid, eio_sid=eio)
    for room in ("room:x", "room:y"):
        manager.basic_enter_room("a", NS, room)
    manager.basic_enter_room("b", NS, "room:x")
    manager.callbacks["a"] = {}
    assert set(manager.get_rooms("a", NS)) == rooms_by_scan(manager, "a") == {"a", "room:x", "room:y"}
    manager.basic_leave_room("a", NS, "room:y")
    manager.basic_close_room("room:x", NS)
    assert set(manager.get_rooms("a", NS)) == rooms_by_scan(manager, "a") == {"a"}
    manager.basic_disconnect("a", NS)
    assert manager.get_rooms("a", NS) == [] and rooms_by_scan(manager, "a") == set()
    assert "a" not in manager.callbacks
    assert set(manager.get_rooms("b", NS)) == rooms_by_scan(manager, "b") == {"b"}
    assert isinstance(manager, socketio.AsyncManager)
