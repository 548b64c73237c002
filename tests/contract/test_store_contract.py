"""The `Store` contract, as `chatserver/stores/base.py` states it."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from chatserver.errors import Conflict, Forbidden, RateLimited
from chatserver.models import Member, Position, User
from chatserver.stores.base import Draft, PrivateRoom, RateLimit, RoomInfo

ANA = User("u-ana", "Ana")
BEN = User("u-ben", "Ben")
CARL = User("u-carl", "Carl")
NOW = 1_764_057_600_000
_ids = itertools.count()


def draft(room: str = "lobby", text: str = "hi", user: User = ANA, client_id: str | None = None,
          ts: int = 1, reply_to: int | None = None) -> Draft:
    return Draft(id=f"m{next(_ids)}", room=room, user=user.as_dict(), text=text, ts=ts, client_id=client_id,
                 reply_to=reply_to)


async def append(store, d: Draft, history_size: int = 1000, rate: RateLimit | None = None, dedupe_ttl: float = 600):
    return await store.append(d, history_size=history_size, dedupe_ttl=dedupe_ttl, rate=rate)


async def test_seq_starts_at_one_and_is_per_room(store):
    assert [(await append(store, draft("a"))).message["seq"] for _ in range(3)] == [1, 2, 3]
    assert (await append(store, draft("b"))).message["seq"] == 1


async def test_concurrent_appends_get_distinct_gapless_seq(store):
    results = await asyncio.gather(*(append(store, draft("busy", f"{n}")) for n in range(200)))
    assert sorted(r.message["seq"] for r in results) == list(range(1, 201))


async def test_a_repeated_client_id_returns_the_first_message(store):
    first = await append(store, draft(client_id="c1", text="first"))
    again = await append(store, draft(client_id="c1", text="retry"))
    assert again.duplicate and again.message == first.message
    assert (await store.history("lobby", None, 10)).messages == [first.message]


async def test_dedupe_is_per_user_and_room(store):
    a = await append(store, draft(client_id="c1"))
    b = await append(store, draft(client_id="c1", user=BEN))
    c = await append(store, draft(room="other", client_id="c1"))
    assert not (a.duplicate or b.duplicate or c.duplicate)


async def test_dedupe_forgets_after_its_ttl(store, advance):
    await append(store, draft(client_id="c1"), dedupe_ttl=0.2)
    assert (await append(store, draft(client_id="c1"), dedupe_ttl=0.2)).duplicate
    await advance(0.3)
    assert not (await append(store, draft(client_id="c1"), dedupe_ttl=0.2)).duplicate


async def test_history_is_trimmed_to_its_size(store):
    for n in range(10):
        await append(store, draft(text=str(n)), history_size=4)
    page = await store.history("lobby", None, 100)
    assert [m["seq"] for m in page.messages] == [7, 8, 9, 10] and not page.has_more


async def test_history_pages_backwards_with_has_more(store):
    for n in range(10):
        await append(store, draft(text=str(n)))
    assert [m["seq"] for m in (await store.history("lobby", None, 3)).messages] == [8, 9, 10]
    page = await store.history("lobby", 8, 3)
    assert [m["seq"] for m in page.messages] == [5, 6, 7] and page.has_more
    page = await store.history("lobby", 4, 3)
    assert [m["seq"] for m in page.messages] == [1, 2, 3] and not page.has_more
    page = await store.history("lobby", 3, 50)
    assert [m["seq"] for m in page.messages] == [1, 2] and not page.has_more
    assert (await store.history("lobby", 1, 50)).messages == []
    assert [m["seq"] for m in (await store.history("lobby", 999, 2)).messages] == [9, 10]
    assert (await store.history("empty-room", None, 50)).messages == []


async def test_history_after_trimming_stops_at_the_oldest_kept(store):
    for _ in range(10):
        await append(store, draft(), history_size=5)
    page = await store.history("lobby", 7, 50)
    assert [m["seq"] for m in page.messages] == [6] and not page.has_more
    assert (await store.history("lobby", 3, 50)).messages == []


async def test_recover_an_unknown_room(store):
    recovery = await store.recover("new", None, latest=50)
    assert (recovery.seq, recovery.messages, recovery.recovered) == (0, [], False)
    again = await store.recover("new", Position(0, recovery.epoch), latest=50)
    assert again.epoch == recovery.epoch and again.recovered and again.messages == []


async def test_recover_since_returns_every_missed_message(store):
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    for _ in range(80):
        await append(store, draft())
    recovery = await store.recover("lobby", Position(5, epoch), latest=50)
    assert recovery.recovered and [m["seq"] for m in recovery.messages] == list(range(6, 81))
    up_to_date = await store.recover("lobby", Position(80, epoch), latest=50)
    assert up_to_date.recovered and up_to_date.messages == []


async def test_recover_without_since_gives_the_latest(store):
    for _ in range(80):
        await append(store, draft())
    recovery = await store.recover("lobby", None, latest=50)
    assert not recovery.recovered and recovery.seq == 80
    assert [m["seq"] for m in recovery.messages] == list(range(31, 81))


@pytest.mark.parametrize("since_seq, epoch_ok", [(1, False), (2, True), (99, True)])
async def test_recover_falls_back_when_it_cannot_be_exact(store, since_seq, epoch_ok):
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    for _ in range(10):
        await append(store, draft(), history_size=5)  # seq 1..5 trimmed away
    recovery = await store.recover("lobby", Position(since_seq, epoch if epoch_ok else "stale"), latest=3)
    assert not recovery.recovered
    assert [m["seq"] for m in recovery.messages] == [8, 9, 10]


async def test_recover_since_the_message_before_the_oldest_kept(store):
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    for _ in range(10):
        await append(store, draft(), history_size=5)  # 6..10 kept
    recovery = await store.recover("lobby", Position(5, epoch), latest=50)
    assert recovery.recovered and [m["seq"] for m in recovery.messages] == [6, 7, 8, 9, 10]


async def test_rate_limit_refuses_past_the_limit_and_says_when_to_retry(store, advance):
    rate = RateLimit(key=ANA.id, limit=3, window=1.0)
    for _ in range(3):
        await append(store, draft(), rate=rate)
        await advance(0.1)
    with pytest.raises(RateLimited) as refused:
        await append(store, draft(), rate=rate)
    assert refused.value.retry_after == pytest.approx(0.7, abs=0.08)
    await advance(refused.value.retry_after + 0.05)
    assert (await append(store, draft(), rate=rate)).message["seq"] == 4
    other = RateLimit(key=BEN.id, limit=3, window=1.0)
    assert (await append(store, draft(user=BEN), rate=other)).message["seq"] == 5


async def test_a_deduplicated_retry_costs_no_rate(store):
    rate = RateLimit(key=ANA.id, limit=1, window=10)
    first = await append(store, draft(client_id="c"), rate=rate)
    assert (await append(store, draft(client_id="c"), rate=rate)).message == first.message


async def test_retries_within_the_limit_leave_the_window_as_it_was(store):
    rate = RateLimit(key=ANA.id, limit=2, window=10)
    first = await append(store, draft(client_id="c"), rate=rate)
    for _ in range(3):
        assert (await append(store, draft(client_id="c"), rate=rate)).duplicate
    assert (await append(store, draft(room="other"), rate=rate)).message["seq"] == 1  # the second of two
    with pytest.raises(RateLimited):
        await append(store, draft(room="third"), rate=rate)  # counted across rooms
    assert (await append(store, draft(client_id="c"), rate=rate)).message == first.message


async def test_presence_counts_users_not_connections(store):
    assert await store.add_presence("lobby", ANA, "c1") is True
    assert await store.add_presence("lobby", ANA, "c2") is False
    assert await store.add_presence("lobby", BEN, "c3") is True
    assert await store.members("lobby") == [ANA, BEN]
    assert await store.remove_presence("lobby", ANA, "c1") is False
    assert await store.remove_presence("lobby", ANA, "c2") is True
    assert await store.remove_presence("lobby", ANA, "c2") is False
    assert await store.members("lobby") == [BEN]


async def test_online_rooms_counts_users_and_skips_private_rooms(store):
    await store.add_presence("small", ANA, "c1")
    for conn, user in (("c2", ANA), ("c3", ANA), ("c4", BEN)):
        await store.add_presence("big", user, conn)
    await store.create_private_room(PrivateRoom("secret", "inv", 2), Member(ANA, "owner"))
    await store.add_presence("secret", ANA, "c5")
    assert await store.online_rooms(10) == [("big", 2), ("small", 1)]


async def test_private_rooms_admit_by_invite_up_to_capacity(store):
    await store.create_private_room(PrivateRoom("priv", "the-invite", 2), Member(ANA, "owner"))
    assert await store.roster("priv") == [Member(ANA, "owner")]
    assert (await store.access("public", ANA.id, NOW)).private is False
    assert await store.room_for_invite("the-invite") == "priv"
    assert await store.room_for_invite("nope") is None
    assert await store.admit("priv", Member(BEN, "member"), "wrong") is False
    assert await store.admit("priv", Member(BEN, "member"), "the-invite") is True
    assert await store.admit("priv", Member(CARL, "member"), "the-invite") is False  # full
    assert await store.admit("priv", Member(BEN, "member"), "ünïcode") is True  # already a member
    assert await store.roster("priv") == [Member(ANA, "owner"), Member(BEN, "member")]
    access = await store.access("priv", BEN.id, NOW)
    assert access.private and access.member == Member(BEN, "member")


async def test_concurrent_admissions_never_exceed_capacity(store):
    await store.create_private_room(PrivateRoom("priv", "inv", 3), Member(ANA, "owner"))
    results = await asyncio.gather(*(store.admit("priv", Member(User(f"u{n}", f"U{n}"), "member"), "inv")
                                     for n in range(20)))
    assert sum(results) == 2
    assert len(await store.roster("priv")) == 3


async def test_an_app_managed_room_is_created_then_updated(store):
    created, added = await store.put_private_room("order-1", "Order 1", [Member(ANA, "owner"), Member(BEN, "member")])
    assert created and added == [Member(ANA, "owner"), Member(BEN, "member")]
    assert await store.room_info("order-1") == RoomInfo("order-1", private=True, title="Order 1")
    created, added = await store.put_private_room("order-1", None, [Member(BEN, "moderator"), Member(CARL, "member")])
    assert not created and added == [Member(CARL, "member")]
    assert await store.room_info("order-1") == RoomInfo("order-1", private=True, title="Order 1")
    assert await store.roster("order-1") == [Member(ANA, "owner"), Member(BEN, "moderator"), Member(CARL, "member")]
    assert await store.admit("order-1", Member(User("u-dan", "Dan"), "member"), "") is False  # no invite


async def test_a_public_room_with_history_cannot_become_private(store):
    await append(store, draft("chatty"))
    with pytest.raises(Conflict):
        await store.put_private_room("chatty", None, [Member(ANA, "owner")])
    assert (await store.access("chatty", ANA.id, NOW)).private is False
    created, _ = await store.put_private_room("quiet", None, [Member(ANA, "owner")])
    assert created


async def test_members_are_put_and_removed_and_listed_per_user(store):
    member, new = await store.put_member("team", BEN.id, "Ben", "moderator")
    assert new and member == Member(BEN, "moderator")
    member, new = await store.put_member("team", BEN.id, None, "member")
    assert not new and member == Member(BEN, "member")
    member, _ = await store.put_member("team", "u-nameless", None, None)
    assert member == Member(User("u-nameless", "u-nameless"), "member")
    await store.put_private_room("order-2", "Order 2", [Member(BEN, "member")])
    await append(store, draft("order-2"))
    summaries = {summary.info.room: summary for summary in await store.rooms_of(BEN.id)}
    assert set(summaries) == {"team", "order-2"}
    assert summaries["order-2"].info == RoomInfo("order-2", private=True, title="Order 2")
    assert (summaries["order-2"].seq, summaries["order-2"].role) == (1, "member")
    assert summaries["team"].info == RoomInfo("team", private=False, title=None)
    assert await store.remove_member("team", BEN.id) == Member(BEN, "member")
    assert await store.remove_member("team", BEN.id) is None
    assert [summary.info.room for summary in await store.rooms_of(BEN.id)] == ["order-2"]


async def test_sanctions_hold_until_they_expire_or_are_lifted(store):
    await store.sanction("lobby", "ban", BEN.id, NOW + 1000)
    await store.sanction("lobby", "mute", ANA.id, 0)
    assert (await store.access("lobby", BEN.id, NOW)).banned_until == NOW + 1000
    assert (await store.access("lobby", BEN.id, NOW + 1000)).banned_until is None  # expired by time
    assert (await store.access("lobby", ANA.id, NOW + 10**9)).muted_until == 0  # for good
    assert (await store.access("lobby", ANA.id, NOW)).banned_until is None
    assert await store.lift("lobby", "mute", ANA.id) is True
    assert await store.lift("lobby", "mute", ANA.id) is False
    assert (await store.access("lobby", ANA.id, NOW)).muted_until is None


async def test_a_sanctioned_users_own_message_is_refused_in_the_append(store):
    await store.sanction("lobby", "mute", BEN.id, 0)
    with pytest.raises(Forbidden):
        await store.append(draft(user=BEN), history_size=10, dedupe_ttl=600, rate=None, moderated=True)
    published = await store.append(draft(user=BEN), history_size=10, dedupe_ttl=600, rate=None)  # the backend's
    assert published.message["seq"] == 1
    await store.sanction("lobby", "ban", ANA.id, 5)  # ended long before the draft's ts
    stored = await store.append(draft(user=ANA, ts=10), history_size=10, dedupe_ttl=600, rate=None, moderated=True)
    assert stored.message["seq"] == 2
