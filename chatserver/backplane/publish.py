"""What a store publishes to the other instances, in the same atomic step as storing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PublishFrame:
    """How one room event is published: with `command` (PUBLISH or SPUBLISH) on `channel`,
    the event's one argument (its payload, as JSON) between `prefix` and `suffix`."""

    channel: str
    command: str
    prefix: str
    suffix: str


class RoomPublisher(Protocol):
    """Frames room events for the other instances, in the form their pub/sub listener
    reads (the transport's); a store that shares state with them is built with one."""

    def frame(self, room: str, event: str) -> PublishFrame:
        """How `event` of `room` reaches the instances that hold the room."""
        ...

    def user_frame(self, user_id: str, event: str) -> PublishFrame | None:
        """How `event` reaches the user's connections on the other instances, from a room's
        step; None where a room's script cannot publish on the user's channel (a shard
        channel in another slot of a Cluster)."""
        ...
