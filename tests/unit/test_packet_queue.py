"""`PacketQueue` behaves as python-engineio relies on `asyncio.Queue` behaving."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from chatserver.transport.packet_queue import PacketQueue


async def test_items_come_out_in_order_and_a_waiting_getter_is_woken():
    queue = PacketQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert queue.getter_waiting and queue.empty()
    for item in ("a", "b", "c"):
        queue.put_nowait(item)
    assert await waiting == "a"
    assert not queue.getter_waiting and queue.qsize() == 2
    assert [queue.get_nowait(), await queue.get()] == ["b", "c"]
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_getter_cancelled_by_a_timeout_leaves_the_item_to_the_next():
    """python-engineio's polling waits through `asyncio.wait_for`, which cancels the get."""
    queue = PacketQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("x")  # wakes the first...
    first.cancel()  # ...which is cancelled before it runs
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) == "x"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.05)
    assert not queue.getter_waiting


async def test_join_waits_until_every_item_is_done():
    queue = PacketQueue()
    await asyncio.wait_for(queue.join(), 1)  # nothing put: returns at once
    queue.put_nowait(1)
    queue.put_nowait(2)
    joined = asyncio.ensure_future(queue.join())
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        queue.task_done()


async def test_drained_items_go_out_in_order_from_a_task_that_ends_when_the_queue_is_empty():
    queue = PacketQueue()
    batches: list[list[str]] = []

    async def drain(target: list[list[str]], batch: list[str]) -> bool:
        await asyncio.sleep(0)  # a write that waits for the client: more is put meanwhile
        target.append(batch)
        return True

    queue.put_nowait("a")  # before draining: handed over once it starts
    queue.drain_into(drain, batches)
    assert not queue.idle
    queue.put_nowait("b")
    await queue.drained()
    queue.put_nowait("c")
    await asyncio.sleep(0)
    queue.put_nowait("d")  # while "c" is being written: waits its turn behind it
    assert not queue.idle
    await queue.drained()
    assert [item for batch in batches for item in batch] == ["a", "b", "c", "d"]
    assert queue.idle and queue.empty() and not any(
        task.get_coro().__qualname__.startswith("PacketQueue") for task in asyncio.all_tasks())
    await asyncio.wait_for(queue.join(), 1)


async def test_draining_stops_when_the_drain_says_so_and_later_items_stay_queued():
    queue = PacketQueue()
    batches: list[list[str | None]] = []

    async def drain(target: list[list[str | None]], batch: list[str | None]) -> bool:
        target.append(batch)
        return None not in batch

    queue.drain_into(drain, batches)
    for item in ("a", None):
        queue.put_nowait(item)
    await queue.drained()
    queue.put_nowait("late")
    await queue.drained()
    assert batches == [["a", None]]
    assert not queue.idle and queue.qsize() == 1
