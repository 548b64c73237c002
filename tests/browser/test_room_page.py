"""The room page of issue 11 as a person uses it: the composer, how messages are
shown (groups, days, own, links), refusals inline, a long room (older history,
the new-messages divider, the unread count), and an offline round trip."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from tests.browser.helpers import (
    CONFIRMED_TEXTS,
    MESSAGES,
    STORED,
    NewContext,
    assert_exactly,
    contrast_problems,
    open_chat,
    signed_in_context,
    unique_room,
)
from tests.conftest import API_KEY

SCROLLER = "#scroller"


async def publish(server_url: str, room: str, texts: list[str]) -> None:
    """Store messages as a backend would, through the HTTP publish route."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for text in texts:
            async with http.post(f"{server_url}/api/rooms/{room}/messages", json={"text": text}) as resp:
                assert resp.status == 201, await resp.text()


async def test_composer_enter_sends_shift_enter_adds_a_line_and_counter(
        server_url: str, new_context: NewContext) -> None:
    url = f"{server_url}/chat/{unique_room()}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")

    box = ana.locator("#text")
    await box.press("Enter")  # nothing to send
    await box.type("first line")
    await box.press("Shift+Enter")
    await box.type("second line")
    await expect(box).to_have_value("first line\nsecond line")
    await expect(ana.locator(STORED)).to_have_count(0)
    await box.press("Enter")
    await expect(box).to_have_value("")
    for page in (ana, bob):
        await assert_exactly(page, ["first line\nsecond line"])
        # Shown on two lines, not one.
        height = await page.locator(f"{STORED} .text").evaluate("e => e.getBoundingClientRect().height")
        line = await page.locator(f"{STORED} .text").evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
        assert height >= 1.8 * line, (height, line)

    # The counter appears near the limit (4000), and says by how much a text is over it.
    counter = ana.locator("#counter")
    await box.fill("x" * 3599)
    await expect(counter).to_be_hidden()
    await box.fill("x" * 3990)
    await expect(counter).to_have_text("10 characters left")
    await box.fill("x" * 4003)
    await expect(counter).to_have_text("3 characters too many")
    await expect(counter).to_have_class(re.compile(r"\bover\b"))


async def test_groups_days_own_messages_and_safe_links(server_url: str, new_context: NewContext) -> None:
    url = f"{server_url}/chat/{unique_room()}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")
    dialogs: list[str] = []
    ana.on("dialog", lambda dialog: dialogs.append(dialog.message))

    hostile = ("see https://example.com/a_(b). or <img src=x onerror=alert(1)> "
               "and javascript:alert(2) and <a href=\"javascript:alert(3)\">x</a> http://[bad")
    for text in ("one", "two", "three"):  # quick succession: at least one pair shares a minute
        await ana.fill("#text", text)
        await ana.press("#text", "Enter")
    await assert_exactly(bob, ["one", "two", "three"])
    await bob.fill("#text", hostile)
    await bob.press("#text", "Enter")
    await assert_exactly(ana, ["one", "two", "three", hostile])

    # Own messages are marked; the others' are not.
    await expect(ana.locator(f"{STORED}.mine")).to_have_count(3)
    await expect(bob.locator(f"{STORED}.mine")).to_have_count(1)
    # One day separator, "Today", before the first message.
    await expect(ana.locator("#messages .day-separator")).to_have_text(["Today"])
    # A message continues its group exactly when author and minute match the one before.
    groups = await ana.locator(STORED).evaluate_all("""items => items.map(item => ({
        continued: item.classList.contains("continued"),
        author: item.querySelector(".author").textContent,
        minute: Math.floor(Date.parse(item.querySelector("time").dateTime) / 60000)}))""")
    for before, item in itertools.pairwise(groups):
        assert item["continued"] == (item["author"] == before["author"] and item["minute"] == before["minute"]), groups
    assert any(item["continued"] for item in groups), groups
    assert not groups[0]["continued"] and not groups[3]["continued"]
    labels = await ana.evaluate("""async () => {
        const { dayLabel } = await import("/static/message-view.js");
        const midnight = new Date(); midnight.setHours(0, 0, 0, 0);
        const yesterday = new Date(midnight); yesterday.setDate(yesterday.getDate() - 1);
        return [dayLabel(midnight.getTime()), dayLabel(yesterday.getTime()), dayLabel(Date.UTC(2024, 0, 15, 12))];
    }""")
    assert labels[:2] == ["Today", "Yesterday"] and "2024" in labels[2] and "15" in labels[2], labels

    # Only the http(s) URL became a link, a safe one; the rest is text.
    text = ana.locator(f"{STORED} .text").last
    await expect(text).to_have_text(hostile)
    links = text.locator("a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://example.com/a_(b)")
    await expect(links).to_have_text("https://example.com/a_(b)")
    await expect(links).to_have_attribute("rel", "noopener noreferrer")
    await expect(links).to_have_attribute("target", "_blank")
    await ana.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert await ana.locator("#messages img, #messages a[href^='javascript']").count() == 0
    assert dialogs == []


async def test_long_room_older_history_divider_and_unread_title(server_url: str, new_context: NewContext,
                                                                make_client: Callable[..., Any]) -> None:
    room = unique_room("long")
    await publish(server_url, room, [f"m{index}" for index in range(1, 121)])
    context = await signed_in_context(new_context, server_url, "Ana")
    ana = await context.new_page()
    await ana.goto(f"{server_url}/chat/{room}")
    await expect(ana.locator(STORED)).to_have_count(50)  # the join ack's latest 50
    await expect(ana.locator(STORED).first).to_have_attribute("data-seq", "71")
    await expect(ana.locator("#jump-latest")).to_be_hidden()

    # Scrolling to the top loads the page before it, and what was on screen stays put.
    anchor = ana.locator(f"{MESSAGES}[data-seq='71']")
    await scroll_to(ana, 0)
    await expect(ana.locator(STORED)).to_have_count(100)
    top = await anchor.bounding_box()
    await ana.wait_for_timeout(200)
    assert top and (await anchor.bounding_box()) == top
    # The 50 older ones came above it, out of sight.
    assert await ana.locator(SCROLLER).evaluate("e => e.scrollTop") > 1000
    await scroll_to(ana, 0)
    await expect(ana.locator(STORED)).to_have_count(120)
    await expect(ana.locator("#older-status")).to_have_text("This is the start of the conversation.")
    seqs = await ana.locator(STORED).evaluate_all("items => items.map(item => Number(item.dataset.seq))")
    assert seqs == list(range(1, 121))

    # Scrolled up, new messages do not move the view: a divider and a jump button say they came.
    bob = await make_client("Bob")
    await bob.call("join", {"room": room})
    before = await ana.locator(SCROLLER).evaluate("e => e.scrollTop")
    for text in ("new 1", "new 2"):
        assert (await bob.call("message", {"room": room, "text": text}))["ok"]
    await expect(ana.locator(STORED)).to_have_count(122)
    assert await ana.locator(SCROLLER).evaluate("e => e.scrollTop") == before
    divider = ana.locator("#messages .new-divider")
    await expect(divider).to_have_text("New messages")
    assert await divider.evaluate("e => e.nextElementSibling.querySelector('.text').textContent") == "new 1"
    jump = ana.locator("#jump-latest")
    await expect(jump).to_have_text("2 new messages ↓")
    await jump.click()
    await expect(jump).to_be_hidden()
    assert await ana.locator(SCROLLER).evaluate("e => e.scrollHeight - e.scrollTop - e.clientHeight") < 40
    await expect(ana.locator(f"{STORED} .text").last).to_be_in_viewport()

    # While the tab is hidden, the title counts what arrived; back on the tab, it is cleared.
    title = await ana.title()
    await set_hidden(ana, True)
    for text in ("while away 1", "while away 2", "while away 3"):
        assert (await bob.call("message", {"room": room, "text": text}))["ok"]
    await expect(ana).to_have_title(f"(3) {title}")
    await set_hidden(ana, False)
    await expect(ana).to_have_title(title)


async def scroll_to(page: Page, top: int) -> None:
    await page.locator(SCROLLER).evaluate("(e, top) => { e.scrollTop = top; }", top)


async def set_hidden(page: Page, hidden: bool) -> None:
    """Headless Chromium never hides a tab: emulate what switching tabs reports to the page."""
    await page.evaluate("""hidden => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
        Object.defineProperty(document, "visibilityState", {configurable: true,
            get: () => hidden ? "hidden" : "visible"});
        document.dispatchEvent(new Event("visibilitychange"));
    }""", hidden)


async def test_offline_round_trip_keeps_every_message_once_and_in_order(
        server_url: str, new_context: NewContext) -> None:
    url = f"{server_url}/chat/{unique_room()}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")
    await bob.fill("#text", "b1")
    await bob.press("#text", "Enter")
    await assert_exactly(ana, ["b1"])

    await ana.context.set_offline(True)
    await expect(ana.locator("#status")).to_have_text(re.compile("reconnecting…|offline"))
    await expect(ana.locator("#connection")).to_contain_text("sent once")
    for text in ("a1", "a2"):
        await ana.fill("#text", text)
        await ana.press("#text", "Enter")
    pending = ana.locator(f"{MESSAGES}.pending")
    await expect(pending.locator(".text")).to_have_text(["a1", "a2"])
    await expect(pending.locator(".send-state")).to_have_text(["Waiting for the connection…"] * 2)
    assert await contrast_problems(ana, ["#connection", f"{MESSAGES}.pending .send-state",
                                         f"{MESSAGES}.pending .text", "#status"]) == []
    await bob.fill("#text", "b2")
    await bob.press("#text", "Enter")
    await assert_exactly(bob, ["b1", "b2"])
    assert await ana.locator(CONFIRMED_TEXTS).all_text_contents() == ["b1"]

    await ana.context.set_offline(False)
    await expect(ana.locator("#status")).to_have_text("online")
    await expect(ana.locator("#connection")).to_be_hidden()
    for page in (ana, bob):
        await assert_exactly(page, ["b1", "b2", "a1", "a2"])
    await ana.wait_for_timeout(500)  # a second copy of a1 or a2 would have arrived by now
    for page in (ana, bob):
        await assert_exactly(page, ["b1", "b2", "a1", "a2"])
    # The server stored each once, with distinct client_ids.
    stored = await ana.evaluate("""async (room) => {
        const { token } = JSON.parse(localStorage.getItem("chat.session"));
        const answer = await fetch(`/api/rooms/${room}/messages`, {headers: {Authorization: `Bearer ${token}`}});
        return (await answer.json()).messages.map((message) => [message.text, message.client_id]);
    }""", url.rsplit("/", 1)[1])
    assert [text for text, _ in stored] == ["b1", "b2", "a1", "a2"]
    assert len({client_id for _, client_id in stored}) == 4
