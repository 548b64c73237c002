"""The `Store` contract for messages that change, their recovery, and read state."""

from __future__ import annotations

import asyncio

import pytest

from chatserver.errors import Forbidden, InvalidPayload, NotFound, RateLimited
from chatserver.models import Member, Position
from chatserver.stores.base import Change, RateLimit

from .test_store_contract import ANA, BEN, CARL, NOW, append, draft

MAX_REACTIONS = 20


async def change(store, kind, seq, actor=ANA.id, room="lobby", rate=None, **fields):
    return await store.change(Change(room=room, seq=seq, kind=kind, actor=actor, ts=NOW, **fields),
                              rate=rate, max_reactions=MAX_REACTIONS)


async def test_every_message_and_change_takes_the_next_rev(store):
    first = (await append(store, draft(text="one"))).message
    second = (await append(store, draft(text="two", user=BEN))).message
    assert (first["rev"], second["rev"]) == (1, 2)
    assert (first["edited_at"], first["deleted"], first["reactions"], first["reply_to"]) == (None, False, {}, None)
    edited = await change(store, "edit", 1, text="one!")
    assert edited.changed and edited.message["rev"] == 3
    assert (edited.message["text"], edited.message["edited_at"], edited.message["seq"]) == ("one!", NOW, 1)
    third = (await append(store, draft(text="three"))).message
    assert (third["seq"], third["rev"]) == (3, 4)
    recovery = await store.recover("lobby", None, latest=50)
    assert (recovery.seq, recovery.rev) == (3, 4)
    assert [m["text"] for m in (await store.history("lobby", None, 50)).messages] == ["one!", "two", "three"]


async def test_concurrent_changes_and_messages_get_distinct_gapless_revs(store):
    for _ in range(20):
        await append(store, draft())
    results = await asyncio.gather(*(change(store, "react", 1 + n % 20, actor=f"u{n}", emoji="👍", on=True)
                                     for n in range(100)),
                                   *(append(store, draft(text=f"{n}")) for n in range(50)))
    revs = [r.message["rev"] for r in results]
    assert sorted(revs) == list(range(21, 171))


async def test_only_the_author_edits_and_the_author_or_a_moderator_deletes(store):
    await store.put_member("lobby", CARL.id, "Carl", "moderator")
    await append(store, draft(user=ANA))
    with pytest.raises(Forbidden):
        await change(store, "edit", 1, actor=BEN.id, text="mine now")
    with pytest.raises(Forbidden):
        await change(store, "delete", 1, actor=BEN.id)
    with pytest.raises(Forbidden):
        await change(store, "edit", 1, actor=CARL.id, text="moderated")  # a moderator deletes, not edits
    deleted = await change(store, "delete", 1, actor=CARL.id)
    assert deleted.changed
    assert (deleted.message["text"], deleted.message["deleted"], deleted.message["reactions"]) == ("", True, {})
    again = await change(store, "delete", 1, actor=ANA.id)
    assert not again.changed and again.message == deleted.message
    with pytest.raises(Forbidden):
        await change(store, "edit", 1, text="undo")
    with pytest.raises(Forbidden):
        await change(store, "react", 1, actor=BEN.id, emoji="👍", on=True)


async def test_the_backend_edits_and_deletes_any_message(store):
    await append(store, draft(user=BEN))
    assert (await change(store, "edit", 1, actor=None, text="fixed")).message["text"] == "fixed"
    assert (await change(store, "delete", 1, actor=None)).message["deleted"] is True


async def test_a_muted_user_may_neither_edit_nor_react_but_may_delete(store):
    await append(store, draft(user=ANA))
    await store.sanction("lobby", "mute", ANA.id, 0)
    with pytest.raises(Forbidden):
        await change(store, "edit", 1, text="x")
    with pytest.raises(Forbidden):
        await change(store, "react", 1, emoji="👍", on=True)
    assert (await change(store, "delete", 1)).changed


async def test_a_seq_not_in_history_is_not_found(store):
    with pytest.raises(NotFound):
        await change(store, "edit", 1, text="x")
    for _ in range(6):
        await append(store, draft(), history_size=5)
    with pytest.raises(NotFound):
        await change(store, "edit", 1, text="x")  # trimmed away
    with pytest.raises(NotFound):
        await change(store, "react", 7, emoji="👍", on=True)  # not yet sent


async def test_reactions_keep_their_users_in_order_and_repeat_nothing(store):
    await append(store, draft())
    await change(store, "react", 1, actor=BEN.id, emoji="👍", on=True)
    given = await change(store, "react", 1, actor=ANA.id, emoji="👍", on=True)
    assert given.message["reactions"] == {"👍": [BEN.id, ANA.id]}
    twice = await change(store, "react", 1, actor=ANA.id, emoji="👍", on=True)
    assert not twice.changed and twice.message["rev"] == given.message["rev"]
    not_given = await change(store, "react", 1, actor=ANA.id, emoji="🎉", on=False)
    assert not not_given.changed
    await change(store, "react", 1, actor=BEN.id, emoji="👍", on=False)
    taken = await change(store, "react", 1, actor=ANA.id, emoji="👍", on=False)
    assert taken.changed and taken.message["reactions"] == {}


async def test_a_message_holds_a_bounded_number_of_emoji(store):
    await append(store, draft())
    for n in range(MAX_REACTIONS):
        await change(store, "react", 1, emoji=f"e{n}", on=True)
    with pytest.raises(Forbidden):
        await change(store, "react", 1, emoji="one-too-many", on=True)
    joined = await change(store, "react", 1, actor=BEN.id, emoji="e0", on=True)  # an emoji already there
    assert joined.message["reactions"]["e0"] == [ANA.id, BEN.id]


async def test_changes_count_against_the_rate_but_no_ops_do_not(store):
    await append(store, draft())
    rate = RateLimit(key=ANA.id, limit=2, window=60)
    await change(store, "react", 1, emoji="a", on=True, rate=rate)
    for _ in range(3):
        await change(store, "react", 1, emoji="a", on=True, rate=rate)  # nothing to change: free
    await change(store, "react", 1, emoji="b", on=True, rate=rate)
    with pytest.raises(RateLimited):
        await change(store, "react", 1, emoji="c", on=True, rate=rate)


async def test_a_reply_quotes_the_start_of_the_message_it_answers(store):
    await append(store, draft(text="é" * 150, user=BEN))
    assert (await append(store, draft(text="yes"))).message["reply_to"] is None
    reply = (await append(store, draft(text="indeed", reply_to=1))).message
    assert reply["reply_to"] == {"seq": 1, "user": BEN.as_dict(), "text": "é" * 100}
    assert (await store.history("lobby", None, 10)).messages[-1] == reply
    await change(store, "delete", 1, actor=BEN.id)
    assert (await store.history("lobby", None, 10)).messages[-1]["reply_to"]["text"] == "é" * 100  # kept
    for seq in (1, 99):  # deleted, and never sent
        with pytest.raises(InvalidPayload):
            await append(store, draft(text="to what?", reply_to=seq))


async def test_recovery_gives_each_changed_message_once_in_rev_order(store):
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    for n in range(5):
        await append(store, draft(text=f"m{n + 1}"))
    seen = Position(4, epoch, rev=5)  # the client saw 1..4 at rev 5 (message 5 came later)
    await change(store, "react", 2, emoji="👍", on=True)  # rev 6
    await change(store, "edit", 1, text="m1 edited")  # rev 7
    await change(store, "react", 2, actor=BEN.id, emoji="👍", on=True)  # rev 8: message 2 again
    await change(store, "edit", 5, text="m5 edited")  # rev 9: a missed message, in `messages`
    recovery = await store.recover("lobby", seen, latest=50)
    assert recovery.recovered and recovery.rev == 9
    assert [m["seq"] for m in recovery.messages] == [5] and recovery.messages[0]["text"] == "m5 edited"
    assert [(m["seq"], m["rev"]) for m in recovery.updated] == [(1, 7), (2, 8)]
    assert recovery.updated[1]["reactions"] == {"👍": [ANA.id, BEN.id]}
    version_1 = await store.recover("lobby", Position(4, epoch), latest=50)
    assert version_1.recovered and version_1.updated is None
    current = await store.recover("lobby", Position(5, epoch, rev=9), latest=50)
    assert current.recovered and current.messages == [] and current.updated == []


async def test_recovery_is_not_exact_when_a_changed_message_left_history(store):
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    for _ in range(5):
        await append(store, draft(), history_size=5)
    await change(store, "edit", 1, text="changed, then trimmed")  # rev 6
    await append(store, draft(), history_size=5)  # seq 6 (rev 7) pushes message 1 out
    stale = await store.recover("lobby", Position(5, epoch, rev=5), latest=50)
    assert not stale.recovered and stale.updated is None
    after = await store.recover("lobby", Position(5, epoch, rev=6), latest=50)
    assert after.recovered and [m["seq"] for m in after.messages] == [6] and after.updated == []


async def test_read_marks_move_forward_only_and_stop_at_the_latest(store):
    for _ in range(3):
        await append(store, draft(user=BEN))
    assert await store.mark_read("lobby", ANA.id, 2) == (2, True)
    assert await store.mark_read("lobby", ANA.id, 1) == (2, False)
    assert await store.mark_read("lobby", ANA.id, 99) == (3, True)
    assert await store.mark_read("empty", ANA.id, 5) == (0, False)
    assert await store.last_reads("lobby", [ANA.id, BEN.id]) == {ANA.id: 3, BEN.id: 0}


async def test_unread_counts_what_others_sent_and_did_not_delete(store):
    for n in range(6):
        await append(store, draft(user=BEN if n % 2 else CARL))
    await change(store, "delete", 2, actor=BEN.id)
    recovery = await store.recover("lobby", None, latest=50, reader=ANA.id)
    assert (recovery.read.last_read, recovery.read.unread) == (0, 5)
    await store.append(draft(user=ANA), history_size=1000, dedupe_ttl=600, rate=None, moderated=True)
    after_sending = await store.recover("lobby", None, latest=50, reader=ANA.id)
    assert (after_sending.read.last_read, after_sending.read.unread) == (7, 0)  # sending reads
    for _ in range(150):
        await append(store, draft(user=BEN))
    assert (await store.recover("lobby", None, latest=1, reader=ANA.id)).read.unread == 100  # capped


async def test_rooms_of_gives_read_state_and_the_public_rooms_read_in(store):
    await store.put_private_room("team", "Team", [Member(ANA, "member")])
    for room in ("team", "lobby", "elsewhere"):
        for _ in range(3):
            await append(store, draft(room=room, user=BEN))
    await store.mark_read("team", ANA.id, 1)
    await store.mark_read("lobby", ANA.id, 3)
    summaries = {summary.info.room: summary for summary in await store.rooms_of(ANA.id)}
    assert set(summaries) == {"team", "lobby"}
    assert (summaries["team"].role, summaries["team"].read.last_read, summaries["team"].read.unread) == \
        ("member", 1, 2)
    assert (summaries["lobby"].role, summaries["lobby"].seq, summaries["lobby"].read.unread) == (None, 3, 0)
