"""The pub/sub channels of one deployment, planned for a Redis Cluster like the keys are."""

from __future__ import annotations

from dataclasses import dataclass


def room_tag(room: str) -> str:
    """The hash tag that puts every key (and the channel) of `room` in one slot: `{room}`.

    Redis hashes only what lies between the first `{` and the next `}`. Room ids of the
    contract (`^[A-Za-z0-9_-]{1,64}$`, private ones random from that alphabet) never
    hold a brace, so the tag is exactly the room id; anything else is refused.
    """
    if "{" in room or "}" in room:
        raise ValueError(f"room id {room!r} holds a brace")
    return "{" + room + "}"


def user_tag(user_id: str) -> str:
    """The hash tag of a user's keys and channel: `{u:<user id>}`, a slot of the user's own.

    A user id is any `sub` of 1 to 64 characters, braces included, so `%`, `{` and `}`
    are percent-escaped: the tag stays one user's, and two ids never share a name."""
    escaped = user_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return "{u:" + escaped + "}"


@dataclass(frozen=True)
class Channels:
    """Channel names under one prefix (which must hold no brace, as key prefixes)."""

    prefix: str

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"channel prefix {self.prefix!r} holds a brace")

    @property
    def shared(self) -> str:
        """The channel every instance hears: python-socketio's own messages (emits to one
        connection or to all, disconnects of a connection held elsewhere)."""
        return self.prefix + "socketio"

    def room(self, room: str) -> str:
        """The room's events, in the slot of its keys, so that a store's script can publish
        on it in the same step as storing; heard by the instances holding the room."""
        return f"{self.prefix}{room_tag(room)}:events"

    def user(self, user_id: str) -> str:
        """Events addressed to one user (`notify`, `disconnected`, ...), heard by the
        instances holding a connection of that user."""
        return f"{self.prefix}{user_tag(user_id)}:events"
