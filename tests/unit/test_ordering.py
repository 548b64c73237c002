"""SeqOrder: a room's messages leave in seq order, however they arrive."""

from __future__ import annotations

import asyncio

from chatserver.transport.ordering import SeqOrder


def collecting() -> tuple[SeqOrder[str, int], list[tuple[str, list[int]]]]:
    late: list[tuple[str, list[int]]] = []
    return SeqOrder(lambda room, items: late.append((room, items)), gap_wait=0.05), late


async def test_in_order_arrivals_go_out_at_once():
    order, late = collecting()
    assert [order.arrive("a", seq, seq) for seq in (4, 5, 6)] == [[4], [5], [6]]
    assert late == []


async def test_an_early_message_waits_for_the_one_before_it():
    order, late = collecting()
    assert order.arrive("a", 1, 1) == [1]
    assert order.arrive("a", 3, 3) == []
    assert order.arrive("a", 4, 4) == []
    assert order.arrive("b", 1, 1) == [1]  # other rooms do not wait
    assert order.arrive("a", 2, 2) == [2, 3, 4]
    await asyncio.sleep(0.1)
    assert late == []  # the timer was cancelled


async def test_a_gap_that_never_fills_is_released_late_in_order():
    order, late = collecting()
    order.arrive("a", 1, 1)
    assert order.arrive("a", 4, 4) == []
    assert order.arrive("a", 3, 3) == []
    await asyncio.sleep(0.1)
    assert late == [("a", [3, 4])]
    assert order.arrive("a", 5, 5) == [5]  # and the room goes on from there
    assert order.arrive("a", 2, 2) == [2]  # a straggler is not held back


async def test_a_new_epoch_starts_over_at_one():
    order, _ = collecting()
    order.arrive("a", 57, 57)
    assert order.arrive("a", 1, 1) == [1]
    assert order.arrive("a", 2, 2) == [2]


async def test_old_rooms_are_forgotten_past_the_limit():
    order: SeqOrder[str, int] = SeqOrder(lambda room, items: None, gap_wait=1, max_rooms=2)
    for room in ("a", "b", "c"):
        order.arrive(room, 10, 10)
    assert order.arrive("a", 20, 20) == [20]  # forgotten: nothing to wait for
    assert order.arrive("c", 12, 12) == []  # remembered: waits for 11


async def test_a_followed_room_waits_from_the_position_a_join_read():
    order, _ = collecting()
    order.follow("a", 0)
    assert order.arrive("a", 2, 2) == []
    assert order.arrive("a", 1, 1) == [1, 2]
    order.follow("a", 40)  # already followed: a later join changes nothing
    assert order.arrive("a", 4, 4) == []


async def test_a_new_epoch_releases_what_the_old_one_held_and_starts_over():
    order, late = collecting()
    order.arrive("a", 5, 5)
    assert order.arrive("a", 7, 7) == []  # waits for 6, which the lost history took with it
    assert order.arrive("a", 1, 1) == [7, 1]
    assert order.arrive("a", 3, 3) == []  # the new epoch orders from 1
    assert order.arrive("a", 2, 2) == [2, 3]
    await asyncio.sleep(0.1)
    assert late == []
