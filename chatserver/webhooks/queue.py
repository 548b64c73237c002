"""What delivery needs of the place where events wait."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .events import HookEvent, HookRecorder

DropReason = str  # "expired" (retried for WEBHOOK_RETRY_HOURS) or "queue_full" (past WEBHOOK_MAX_QUEUE)


class HookQueue(HookRecorder, Protocol):
    """Events waiting for delivery, in order per room, bounded in number: past the bound
    the oldest of all are dropped (and reported to `on_drop`)."""

    def listen(self, on_record: Callable[[str], None], on_drop: Callable[[HookEvent, DropReason], None]) -> None:
        """Call `on_record(room)` after each event recorded here, `on_drop` for each one dropped."""
        ...

    async def claim(self, room: str) -> HookEvent | None:
        """The room's oldest waiting event, when this instance is to deliver it now; None
        when the room has none or another instance is delivering its events."""
        ...

    async def settle(self, room: str, event: HookEvent) -> HookEvent | None:
        """`event` is done with (delivered or dropped): forget it, and claim the room's next."""
        ...

    async def retry_at(self, room: str, at: float) -> None:
        """This instance holds the room's events until it retries at `at` (Unix seconds)."""
        ...

    async def trim(self) -> None:
        """Drop the oldest events past the bound, if it was passed since the last look."""
        ...

    async def waiting_rooms(self) -> list[str]:
        """Rooms with events waiting that nobody may be delivering (for a periodic sweep)."""
        ...

    async def size(self) -> tuple[int, int | None]:
        """How many events wait, and the `ts` of the oldest (None for none)."""
        ...
