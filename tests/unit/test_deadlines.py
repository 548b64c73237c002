"""`Deadlines`: one timer for many deadlines of one length, each served on time and in order."""

from __future__ import annotations

import asyncio

from chatserver.transport.deadlines import Deadlines


async def test_each_deadline_falls_due_its_delay_after_it_was_set() -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float]] = []
    deadlines: Deadlines[str] = Deadlines(0.2, lambda keys: fired.extend((key, loop.time()) for key in keys))
    set_at = {}
    for key in "abc":
        set_at[key] = loop.time()
        deadlines.set(key)
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert [key for key, _ in fired] == ["a", "b", "c"]
    for key, when in fired:
        assert 0.2 <= when - set_at[key] < 0.25
    assert len(deadlines) == 0


async def test_a_failing_handler_does_not_stop_later_deadlines() -> None:
    seen: list[str] = []

    def due(keys: list[str]) -> None:
        seen.extend(keys)
        if "bad" in keys:
            raise RuntimeError("boom")

    deadlines: Deadlines[str] = Deadlines(0.05, due)
    deadlines.set("bad")
    await asyncio.sleep(0.1)
    deadlines.set("good")
    await asyncio.sleep(0.1)
    assert seen == ["bad", "good"]
