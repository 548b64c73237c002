"""Read state across devices (contract v2), on the pages: the home page lists the user's
rooms with unread badges that follow what the user reads on another tab or device; the
room page says when the user is looking (visible, scrolled to the bottom), which is what
marks a room read; and a private room shows who has seen its latest message. Each at
desktop and phone widths, light and dark."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.backend import call, minted, signed_in
from tests.browser.helpers import (
    LOOKS,
    STORED,
    NewContext,
    contrast_problems,
    fits_width,
    message_at,
    no_script_errors,
    open_page,
    send,
    session_context,
    unique_room,
)
from tests.browser.test_home_and_looks import SCREENSHOTS
from tests.browser.test_room_page import publish, scroll_to, set_hidden
from tests.chat_client import ChatClient, new_session

pytestmark = pytest.mark.parametrize("look", LOOKS.values(), ids=LOOKS.keys())

LIVE_MS = 2500  # well under the home page's 5 s refresh: a change this fast came live


async def private_room(server_url: str, title: str, members: list[dict[str, str]]) -> str:
    room = unique_room("private")
    status, answer = await call(server_url, "PUT", f"/api/rooms/{room}",
                                {"private": True, "title": title, "members": members})
    assert status == 201, answer
    return room


def row(page: Page, room: str):
    return page.locator(f'#my-rooms li[data-room="{room}"]')


async def test_home_lists_my_rooms_with_unread_badges_that_follow_reading_elsewhere(
        server_url: str, new_context: NewContext, look: dict[str, Any]) -> None:
    session = await new_session(server_url, "Ana")
    ana = {"id": session["user"]["id"], "name": "Ana"}
    bob_id = unique_room("bob")
    team = await private_room(server_url, "Team <b>plans</b>", [ana, {"id": bob_id, "name": "Bob"}])
    busy = await private_room(server_url, "Busy", [ana])
    quiet = await private_room(server_url, "Quiet", [ana])
    bob = await signed_in(server_url, bob_id, "Bob")
    other = None
    try:
        await bob.join(team)
        for text in ("one", "two", "three"):
            await bob.send(team, text)
        await publish(server_url, busy, [f"news {index}" for index in range(1, 121)])

        context = await session_context(new_context, session, **look)
        home = await open_page(context, server_url, joined=False)
        await expect(home.locator("#my-rooms-title")).to_have_text("Your rooms")
        await expect(row(home, team).locator(".room-name")).to_have_text("Team <b>plans</b>")  # text, not markup
        await expect(home.locator("#my-rooms b")).to_have_count(0)
        await expect(row(home, team).locator(".unread-badge")).to_have_text("3")
        await expect(row(home, team).locator(".unread")).to_contain_text("3 unread messages")
        await expect(row(home, busy).locator(".unread-badge")).to_have_text("99+")  # the server counts to 100
        await expect(row(home, quiet)).to_contain_text("Quiet")
        await expect(row(home, quiet).locator(".unread")).to_be_hidden()
        await expect(row(home, team).locator("a")).to_have_attribute("href", f"/chat/{team}")
        assert await contrast_problems(home, ["#my-rooms .room-name", "#my-rooms .unread-badge"]) == []
        await fits_width(home)
        SCREENSHOTS.mkdir(exist_ok=True)
        size = "phone" if look.get("is_mobile") else "desktop"
        await home.screenshot(path=SCREENSHOTS / f"home-my-rooms-{size}-{look['color_scheme']}.png", full_page=True)

        # Read on another device: the badge goes at once, not at the next refresh.
        other = ChatClient(server_url, session["token"], session["user"])
        await other.connect()
        await other.join(busy)
        assert (await other.call("read", {"room": busy, "seq": 110}))["ok"]
        await expect(row(home, busy).locator(".unread-badge")).to_have_text("10", timeout=LIVE_MS)
        assert (await other.call("read", {"room": busy, "seq": 120}))["ok"]
        await expect(row(home, busy).locator(".unread")).to_be_hidden(timeout=LIVE_MS)

        # Read on another tab: the room page, visible and at the bottom, reads what it shows.
        await expect(row(home, team).locator(".unread-badge")).to_have_text("3")
        tab = await open_page(context, f"{server_url}/chat/{team}")
        await expect(tab.locator(f"{STORED} .text")).to_have_text(["one", "two", "three"])
        await expect(row(home, team).locator(".unread")).to_be_hidden(timeout=LIVE_MS)

        # New messages bump the badge again (at the latest by the next refresh).
        await tab.close()
        await bob.send(team, "four")
        await bob.send(team, "five")
        await expect(row(home, team).locator(".unread-badge")).to_have_text("2", timeout=8000)
        no_script_errors(home)
    finally:
        await bob.close()
        if other:
            await other.close()


async def open_as(new_context: NewContext, url: str, sub: str, name: str, look: dict[str, Any]) -> Page:
    session = {"token": minted(sub, name), "user": {"id": sub, "name": name}}
    return await open_page(await session_context(new_context, session, **look), url)


async def test_seen_by_in_a_private_room_follows_who_is_looking(server_url: str, new_context: NewContext,
                                                                look: dict[str, Any]) -> None:
    ana_id, bob_id, cyd_id = unique_room("ana"), unique_room("bob"), unique_room("cyd")
    room = await private_room(server_url, "Three of us", [{"id": ana_id, "name": "Ana"}, {"id": bob_id, "name": "Bob"},
                                                          {"id": cyd_id, "name": "Cyd"}])
    await publish(server_url, room, [f"earlier {index}" for index in range(1, 41)])
    url = f"{server_url}/chat/{room}"
    ana = await open_as(new_context, url, ana_id, "Ana", look)
    bob = await open_as(new_context, url, bob_id, "Bob", look)
    await expect(bob.locator(STORED)).to_have_count(40)

    # Bob looks at the bottom of the room: Ana's new message is seen by him, and she is told.
    await send(ana, "Are we still on for Friday?")
    latest = ana.locator(STORED).last
    await expect(latest.locator(".text")).to_have_text("Are we still on for Friday?")
    seen = ana.locator("#messages .seen-by")
    await expect(seen).to_have_text("Seen by Bob")
    # Under the latest message; never naming oneself, nor its author (who has seen it, of course).
    assert await seen.evaluate(
        "e => e.previousElementSibling === [...document.querySelectorAll('#messages .message[data-seq]')].at(-1)")
    await expect(bob.locator("#messages .seen-by")).to_have_count(0)
    assert await contrast_problems(ana, ["#messages .seen-by"]) == []
    await fits_width(ana)

    # Bob's tab is hidden: he does not see the next one, so Ana's page does not say so...
    await set_hidden(bob, True)
    await send(ana, "Hello?")
    await expect(ana.locator(f"{STORED} .text").last).to_have_text("Hello?")
    await ana.wait_for_timeout(800)
    await expect(seen).to_have_count(0)
    # ... until he comes back to it and looks at the bottom.
    await set_hidden(bob, False)
    await scroll_to(bob, 10**6)
    await expect(seen).to_have_text("Seen by Bob")

    # Scrolled up in the history, Bob is not looking at the latest either; back at the bottom he is.
    await scroll_to(bob, 0)
    await expect(bob.locator("#jump-latest")).to_be_visible()
    await send(ana, "Friday 6 pm, then.")
    await expect(bob.locator(f"{STORED} .text").last).to_have_text("Friday 6 pm, then.")
    await ana.wait_for_timeout(800)
    await expect(seen).to_have_count(0)
    await bob.locator("#jump-latest").click()
    await expect(seen).to_have_text("Seen by Bob")

    # Cyd comes and reads it too (the join tells her how far the others read).
    cyd = await open_as(new_context, url, cyd_id, "Cyd", look)
    await expect(cyd.locator(f"{STORED} .text").last).to_have_text("Friday 6 pm, then.")
    await expect(seen).to_have_text("Seen by Bob and Cyd")
    await expect(cyd.locator("#messages .seen-by")).to_have_text("Seen by Bob")
    await screenshot(ana, look)

    # Bob answers: the line moves under his message, as the others look at it.
    await send(bob, "Yes!")
    answer = bob.locator(STORED).last
    await expect(answer.locator(".text")).to_have_text("Yes!")
    seq = int(await answer.get_attribute("data-seq") or 0)
    await expect(bob.locator("#messages .seen-by")).to_have_text("Seen by Ana and Cyd")
    await expect(message_at(bob, seq).locator("+ .seen-by")).to_have_count(1)
    await expect(seen).to_have_text("Seen by Cyd")
    await expect(cyd.locator("#messages .seen-by")).to_have_text("Seen by Ana")
    await expect(ana.locator("#messages .seen-by")).to_have_count(1)
    no_script_errors(ana, bob, cyd)


async def screenshot(page: Page, look: dict[str, Any]) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    size = "phone" if look.get("is_mobile") else "desktop"
    await page.screenshot(path=SCREENSHOTS / f"seen-by-{size}-{look['color_scheme']}.png")
