"""Key names of `RedisStore`, planned for a Redis Cluster.

Every key of one room carries the room's hash tag (`room_tag`), so they share one hash
slot and each script on a room runs where its keys live. Keys that are not per room
(a user's, in the user's own slot; rate windows, the instance registry, the online index, invites) are each touched by
single-key commands or single-key scripts only. One layout serves a single server too.
The exception is webhooks' indexes (`hooks_*`), which a room's scripts touch beside its
keys: webhooks run on one server (or Sentinel's master), not on a Cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..backplane.channels import room_tag, user_tag


@dataclass(frozen=True)
class RoomKeys:
    """The keys of one room, all in the slot of its hash tag."""

    base: str  # `<prefix>room:{<room>}:`

    @property
    def meta(self) -> str:
        """Hash: `seq`, `rev`, `epoch`, and `lost_rev` (the highest `rev` of a change whose
        message has left history)."""
        return self.base + "meta"

    @property
    def log(self) -> str:
        """Stream of messages as first stored, entry id `0-<seq>`."""
        return self.base + "log"

    @property
    def changed(self) -> str:
        """Hash: `seq` to the current JSON of a message changed since it was stored."""
        return self.base + "changed"

    @property
    def revs(self) -> str:
        """Sorted set: the `seq` of each changed message, scored by its latest change's `rev`."""
        return self.base + "revs"

    @property
    def history(self) -> list[str]:
        """The keys every script on the room's history takes first: meta, log, changed, revs."""
        return [self.meta, self.log, self.changed, self.revs]

    @property
    def reads(self) -> str:
        """Hash: user id to the `seq` the user has read the room up to."""
        return self.base + "reads"

    def dedupe(self, user_id: str, client_id: str) -> str:
        """String: the first message a user sent with this `client_id`."""
        return self.base + "dedupe:" + json.dumps([user_id, client_id])

    @property
    def users(self) -> str:
        """Hash: user id to user JSON, for users online in the room."""
        return self.base + "users"

    @property
    def conns(self) -> str:
        """Hash: user id to that user's number of connections in the room."""
        return self.base + "conns"

    def instance(self, instance: str) -> str:
        """Set: `user\\nconn` entries that one instance holds in the room."""
        return self.base + "instance:" + instance

    @property
    def private(self) -> str:
        """Hash: a private room's `invite` (empty for a room the app manages), `capacity`
        and `title` (absent for a public room)."""
        return self.base + "private"

    @property
    def members(self) -> str:
        """Set: the members of a private room made before rosters (version 1 of the
        contract), read as `member`s; new members go to `roster`."""
        return self.base + "members"

    @property
    def roster(self) -> str:
        """Hash: user id to member JSON (`id`, `name`, `role`)."""
        return self.base + "roster"

    @property
    def hooks(self) -> str:
        """Stream: the room's webhook events waiting for delivery, read through the
        consumer group `deliver` (one consumer per instance)."""
        return self.base + "hooks"

    @property
    def sanctions(self) -> str:
        """Hash: `ban:<user id>` and `mute:<user id>` to the Unix ms they end (0: for good)."""
        return self.base + "sanctions"


@dataclass(frozen=True)
class UserKeys:
    """The keys of one user, all in the slot of the user's hash tag."""

    base: str  # `<prefix>user:{u:<user id>}:`

    @property
    def rooms(self) -> str:
        """Set: the rooms whose roster holds the user."""
        return self.base + "rooms"

    @property
    def read_in(self) -> str:
        """Set: the public rooms the user marked read in."""
        return self.base + "read_in"

    @property
    def revoked(self) -> str:
        """String: Unix ms before which the user's tokens are refused."""
        return self.base + "revoked"


@dataclass(frozen=True)
class Keys:
    """Every key name under one prefix (which must hold no brace: the first brace pair
    of a key is its hash tag)."""

    prefix: str

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"key prefix {self.prefix!r} holds a brace")

    def room(self, room: str) -> RoomKeys:
        return RoomKeys(f"{self.prefix}room:{room_tag(room)}:")

    def user(self, user_id: str) -> UserKeys:
        return UserKeys(f"{self.prefix}user:{user_tag(user_id)}:")

    def rate(self, key: str) -> str:
        """Sorted set: one user's appends in the rate window, scored by time (ms)."""
        return f"{self.prefix}rate:{key}"

    @property
    def instances(self) -> str:
        """Sorted set: instance id to its last heartbeat (ms)."""
        return self.prefix + "instances"

    def instance_rooms(self, instance: str) -> str:
        """Sorted set: room to (at least) the number of entries an instance holds there,
        so a reaper finds every room a dead instance had connections in."""
        return f"{self.prefix}instance:{instance}:rooms"

    @property
    def online(self) -> str:
        """Sorted set: public room to the number of users online."""
        return self.prefix + "rooms:online"

    @property
    def hooks_due(self) -> str:
        """Sorted set: rooms with webhook events waiting, scored by when (ms) another
        instance should look at them: at once for a new event, later while one holds the room."""
        return self.prefix + "hooks:due"

    @property
    def hooks_heads(self) -> str:
        """Sorted set: rooms with webhook events waiting, scored by their oldest event's serial."""
        return self.prefix + "hooks:heads"

    @property
    def hooks_serial(self) -> str:
        """String: a counter giving every webhook event its place in the order of all of them."""
        return self.prefix + "hooks:serial"

    @property
    def hooks_length(self) -> str:
        """String: the number of webhook events waiting, in all rooms."""
        return self.prefix + "hooks:length"

    def invite(self, invite: str) -> str:
        """String: the private room an invite token belongs to."""
        return f"{self.prefix}invite:{invite}"
