"""The webhook events: `{"id", "type", "ts", "data"}`, as the receiver gets them."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from ..models import Member, User, compact_json

HookType = Literal["message.created", "message.updated", "member.added", "member.removed", "moderation"]


def new_hook_id() -> str:
    """A new, unique event id."""
    return "evt_" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class HookEvent:
    """One event about `room`, made at `ts` (Unix ms); its `body` is what is posted and
    signed, the same bytes on every attempt. `entry` is where a queue keeps it, if it
    needs to know."""

    id: str
    type: HookType
    ts: int
    room: str
    body: bytes
    entry: str = ""

    @classmethod
    def new(cls, room: str, type: HookType, data: Mapping[str, object], ts: int) -> HookEvent:
        """A new event with a unique id."""
        event_id = new_hook_id()
        return cls(event_id, type, ts, room, event_body(event_id, type, ts, data).encode())


HOLE = "\x00hole\x00"  # in an event's data: the value a store's script fills in (see `body_around`)


def event_body(event_id: str, type: HookType, ts: int, data: Mapping[str, object]) -> str:
    """What is posted and signed: `{"id", "type", "ts", "data"}` as compact JSON."""
    return compact_json({"id": event_id, "type": type, "ts": ts, "data": data})


def body_around(event_id: str, type: HookType, ts: int, data: Mapping[str, object]) -> tuple[str, str]:
    """An event's body before and after the one value of `data` that is `HOLE`, for a
    script that learns that value in the step it records the event in."""
    before, hole, after = event_body(event_id, type, ts, data).partition(compact_json(HOLE))
    if not hole:
        raise ValueError("the event's data holds no HOLE")
    return before, after


class HookRecorder(Protocol):
    """Where events wait for delivery."""

    async def record(self, room: str, type: HookType, data: Mapping[str, object]) -> None:
        """Keep an event about `room` for delivery, in the order events are recorded."""
        ...



def member_added(room: str, member: Member) -> dict[str, object]:
    """`member.added`'s data."""
    return {"room": room, "user": member.user.as_dict(), "role": member.role}


def member_removed(room: str, user: User, reason: str) -> dict[str, object]:
    """`member.removed`'s data: `reason` is removed, kicked or banned."""
    return {"room": room, "user": user.as_dict(), "reason": reason}
