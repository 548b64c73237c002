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
