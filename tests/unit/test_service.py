"""ChatService driven directly, with the memory store and a recording fanout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from chatserver.config import Settings
from chatserver.errors import (
    Forbidden,
    InvalidPayload,
    InvalidRoom,
    NotJoined,
    RateLimited,
    StoreUnavailable,
    TooLarge,
)
from chatserver.models import ROOM_RE, User
from chatserver.service import ChatService
from chatserver.stores.memory import MemoryStore

ANA = User("u-ana", "Ana")
BEN = User("u-ben", "Ben")


class RecordingFanout:
    """Keeps what the service asked to deliver, instead of delivering it."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}
        self.emitted: list[tuple[str, dict, str, str | None]] = []
        self.closed: list[str] = []
        self.user_handlers: list[Callable[[str, str, object, list[str]], None]] = []

    async def enter(self, conn: str, room: str) -> None:
        self.rooms.setdefault(room, set()).add(conn)

    async def exit(self, conn: str, room: str) -> None:
        self.rooms.get(room, set()).discard(conn)

    async def broadcast(self, event: str, payload: Mapping[str, object], room: str, skip: str | None = None) -> None:
        self.emitted.append((event, dict(payload), room, skip))

    async def local_broadcast(self, event: str, payload: Mapping[str, object], room: str) -> None:
        await self.broadcast(event, payload, room)  # one instance: local is everywhere

    def follow(self, room: str, seq: int) -> None:
        pass

    async def enter_user(self, conn: str, user_id: str) -> None:
        self.rooms.setdefault(f"user:{user_id}", set()).add(conn)

    async def to_user(self, event: str, payload: Mapping[str, object], user_id: str, skip: str | None = None) -> None:
        self.emitted.append((event, dict(payload), f"user:{user_id}", skip))

    async def to_user_here(self, event: str, payload: Mapping[str, object], user_id: str,
                           skip: str | None = None) -> None:
        await self.to_user(event, payload, user_id, skip)  # one instance: here is everywhere

    async def to_connection(self, event: str, payload: Mapping[str, object], conn: str) -> None:
        self.emitted.append((event, dict(payload), conn, None))

    async def close(self, conn: str) -> None:
        self.closed.append(conn)

    def hear_users(self, handler: Callable[[str, str, object, list[str]], None]) -> None:
        self.user_handlers.append(handler)

    def events(self, name: str) -> list[dict]:
        return [payload for event, payload, _, _ in self.emitted if event == name]


@pytest.fixture
def fanout() -> RecordingFanout:
    return RecordingFanout()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def service(store, fanout) -> ChatService:
    chat = ChatService(store, fanout, Settings(max_message_length=10))
    chat.connect("c-ana", ANA)
    chat.connect("c-ben", BEN)
    return chat


async def test_a_join_enters_the_room_before_reading_history(service, fanout):
    joined = await service.join("c-ana", "lobby", None, None)
    assert fanout.rooms["lobby"] == {"c-ana"} and [online.user for online in joined.members] == [ANA]
    assert fanout.emitted == [("presence", {"room": "lobby", "user": ANA.as_dict(), "status": "joined"},
                               "lobby", "c-ana")]


async def test_a_second_connection_of_a_user_announces_nothing(service, fanout):
    service.connect("c-ana-2", ANA)
    await service.join("c-ana", "lobby", None, None)
    await service.join("c-ana-2", "lobby", None, None)
    await service.disconnect("c-ana")
    assert [p["status"] for p in fanout.events("presence")] == ["joined"]
    await service.disconnect("c-ana-2")
    assert [p["status"] for p in fanout.events("presence")] == ["joined", "left"]


async def test_a_disconnect_during_join_leaves_no_ghost(service, store, fanout):
    gate = asyncio.Event()
    original = store.recover

    async def slow_recover(*args, **kwargs):
        await gate.wait()
        return await original(*args, **kwargs)

    store.recover = slow_recover
    join = asyncio.create_task(service.join("c-ana", "lobby", None, None))
    await asyncio.sleep(0)
    await service.disconnect("c-ana")
    gate.set()
    await join
    assert await store.members("lobby") == []
    assert [p["status"] for p in fanout.events("presence")] in ([], ["joined", "left"])


async def test_send_stores_then_delivers_the_trimmed_text(service, fanout):
    await service.join("c-ana", "lobby", None, None)
    message = await service.send("c-ana", "lobby", "  hey  ", "cid")
    assert message["text"] == "hey" and message["seq"] == 1 and message["client_id"] == "cid"
    assert fanout.events("message") == [message]


@pytest.mark.parametrize("text, error", [("", InvalidPayload), (" \n\t ", InvalidPayload),
                                         ("x" * 11, TooLarge)])
async def test_send_refuses_empty_and_overlong_text(service, text, error):
    await service.join("c-ana", "lobby", None, None)
    with pytest.raises(error):
        await service.send("c-ana", "lobby", text, None)


async def test_a_duplicate_is_acked_but_not_delivered_again(service, fanout):
    await service.join("c-ana", "lobby", None, None)
    first = await service.send("c-ana", "lobby", "once", "c1")
    assert await service.send("c-ana", "lobby", "once", "c1") == first
    assert fanout.events("message") == [first]


async def test_operations_check_the_room_form_and_joining(service):
    with pytest.raises(InvalidRoom):
        await service.join("c-ana", "no spaces", None, None)
    with pytest.raises(NotJoined):
        await service.send("c-ana", "lobby", "hi", None)
    with pytest.raises(NotJoined):
        await service.typing("c-ana", "lobby", True)


async def test_private_rooms_are_for_members(service):
    room = await service.create_private_room(ANA, capacity=2)
    assert ROOM_RE.fullmatch(room.room) and len(room.room) >= 16
    with pytest.raises(Forbidden):
        await service.join("c-ben", room.room, None, None)
    with pytest.raises(Forbidden):
        await service.history(BEN, room.room, None, 50)
    with pytest.raises(Forbidden):
        await service.members(BEN, room.room)
    await service.join("c-ben", room.room, None, room.invite)
    assert (await service.history(BEN, room.room, None, 50)).messages == []


async def test_publish_delivers_without_joining(service, fanout):
    message = await service.publish("news", "hello all", User("system", "System"))
    assert message["seq"] == 1 and fanout.events("message") == [message]


async def test_typing_notices_are_throttled_per_connection(store, fanout):
    now = [1000.0]
    service = ChatService(store, fanout, Settings(typing_rate=1.0, typing_burst=3), clock=lambda: now[0])
    service.connect("c-ana", ANA)
    service.connect("c-ana-2", ANA)
    await service.join("c-ana", "lobby", None, None)
    await service.join("c-ana-2", "lobby", None, None)
    for _ in range(3):
        await service.typing("c-ana", "lobby", True)
    with pytest.raises(RateLimited) as refused:
        await service.typing("c-ana", "lobby", False)
    assert refused.value.retry_after == pytest.approx(1.0)
    await service.typing("c-ana-2", "lobby", True)  # another connection has its own budget
    now[0] += 1.0
    await service.typing("c-ana", "lobby", False)
    assert len(fanout.events("typing")) == 5


async def test_presence_lost_by_the_store_is_restored_even_if_the_first_try_fails(service, store, fanout):
    """Redis came back empty: the heartbeat that finds the instance's entry new starts a
    restore; if that restore fails too (Redis still flapping), the next beats try again."""
    await service.join("c-ana", "lobby", None, None)
    await store.remove_presence("lobby", ANA, "c-ana")  # what a Redis restart loses
    beats = iter([True])  # only the first beat after the restart finds its entry new
    store.heartbeat = lambda: _answer(next(beats, False))
    failures = iter([StoreUnavailable()])
    original = store.add_presence

    async def flapping_add_presence(*args, **kwargs):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return await original(*args, **kwargs)

    store.add_presence = flapping_add_presence
    upkeep = asyncio.create_task(service.keep_presence(interval=0.01, expiry=60))
    try:
        for _ in range(100):
            if await store.members("lobby") == [ANA]:
                break
            await asyncio.sleep(0.01)
        assert await store.members("lobby") == [ANA]
    finally:
        upkeep.cancel()


async def _answer(value: bool) -> bool:
    return value
