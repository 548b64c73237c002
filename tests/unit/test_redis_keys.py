"""The key layout: every key of a room in one hash slot, by redis-py's own slot function."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from chatserver.backplane.channels import Channels, room_tag, user_tag
from chatserver.stores.redis_keys import Keys


def test_every_key_of_a_room_shares_the_slot_of_its_tag():
    room = Keys("chat:").room("lobby")
    names = [room.meta, room.log, room.dedupe("u-ana", "{odd}client}"), room.users, room.conns,
             room.instance("i-1"), room.private, room.members, room.roster, room.sanctions,
             f"chat:{room_tag('lobby')}:events",
             Channels("chat:").room("lobby")]
    assert {key_slot(name.encode()) for name in names} == {key_slot(b"lobby")}
    assert key_slot(Keys("chat:").room("kitchen").meta.encode()) == key_slot(b"kitchen")


@pytest.mark.parametrize("user_id", ["u-ana", "auth0|65f0c1", "{odd}", "a}b{c", "100%{"])
def test_a_users_keys_and_channel_share_a_slot_of_the_users_own(user_id):
    user = Keys("chat:").user(user_id)
    slots = {key_slot(name.encode()) for name in (user.revoked, user.rooms, Channels("chat:").user(user_id))}
    assert len(slots) == 1
    assert user_tag(user_id).count("{") == user_tag(user_id).count("}") == 1  # the tag is the whole escaped id
    assert user_tag(user_id) != user_tag(user_id + "x")


def test_distinct_user_ids_get_distinct_tags():
    ids = ["a{b", "a%7Bb", "a}b", "a%7Db", "a%b", "a%25b"]
    assert len({user_tag(user_id) for user_id in ids}) == len(ids)


@pytest.mark.parametrize("room", ["a{b", "a}b", "{}"])
def test_a_room_id_with_a_brace_is_refused(room):
    with pytest.raises(ValueError):
        room_tag(room)


def test_a_prefix_with_a_brace_is_refused():
    with pytest.raises(ValueError):
        Keys("chat:{x}:")
