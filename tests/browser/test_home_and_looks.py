"""Issue 11 beyond the room's behaviour: the home page, keyboard-only use, the dark
theme and contrast, phone widths, no request leaving the server; and screenshots
of both pages at desktop and phone sizes, light and dark, for people to look at
(saved to tests/browser/screenshots/, which git ignores)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.helpers import (
    STORED,
    NewContext,
    contrast_problems,
    open_chat,
    sign_in,
    signed_in_context,
    unique_room,
)
from tests.chat_client import new_session

SCREENSHOTS = Path(__file__).parent / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

# Text that must be readable on each page: body text, muted text, links, buttons, own messages, state.
HOME_TEXTS = ["h1", ".intro .muted", "#room-hint", "#rooms .room-name", "#rooms .online", "#create-private",
              "#room-form button", "#whoami", "#change-name"]
ROOM_TEXTS = [".room-title", "#status", ".online-summary", f"{STORED} .author", f"{STORED} time",
              f"{STORED}.mine .text", f"{STORED}:not(.mine) .text", f"{STORED} .text a", "#messages .day-separator",
              "#send", "#composer-hint", ".member .name", "#typing", "#older-status"]


async def seed_room(server_url: str, make_client: Callable[..., Any], ana_session: dict[str, Any]) -> str:
    """A room with a short conversation between Ana (the viewer) and Bob."""
    room = unique_room("looks")
    ana = await make_client("Ana", session=ana_session)
    bob = await make_client("Bob")
    for client in (ana, bob):
        await client.call("join", {"room": room})
    lines = [(bob, "Morning! Did the build go out?"), (bob, "The dashboard looks off to me."),
             (ana, "It did, at 8:02. Release notes: https://example.com/releases/2.4"),
             (ana, "Checking the dashboard now.\nIt is the cache: one minute."),
             (bob, "Thanks, that explains it.")]
    for client, text in lines:
        assert (await client.call("message", {"room": room, "text": text}))["ok"]
    return room


async def test_screenshots_theme_contrast_widths_and_no_outside_requests(
        server_url: str, new_context: NewContext, make_client: Callable[..., Any]) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    ana_session = await new_session(server_url, "Ana")
    room = await seed_room(server_url, make_client, ana_session)
    outside: list[str] = []
    for scheme in ("light", "dark"):
        for size_name, viewport in {**SIZES, "narrow": {"width": 360, "height": 740}}.items():
            context = await new_context(viewport=viewport, color_scheme=scheme)
            session = json.dumps(ana_session)
            await context.add_init_script(f"localStorage.setItem('chat.session', JSON.stringify({session}))")
            page = await context.new_page()
            page.on("request", lambda request: request.url.startswith((server_url, "data:"))
                    or outside.append(request.url))
            await page.goto(server_url)
            await expect(page.locator("#rooms")).to_contain_text(f"#{room}")
            await check_page(page, scheme, size_name, "home", HOME_TEXTS)
            await page.goto(f"{server_url}/chat/{room}")
            await expect(page.locator(STORED)).to_have_count(5)
            await expect(page.locator("#status")).to_have_text("online")
            await check_page(page, scheme, size_name, "room", ROOM_TEXTS)
    assert outside == []


async def check_page(page: Page, scheme: str, size_name: str, name: str, texts: list[str]) -> None:
    """The theme follows the system, text meets AA contrast, nothing scrolls sideways; then a screenshot."""
    background = await page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")
    text = await page.evaluate("() => getComputedStyle(document.body).color")
    expected = ("rgb(15, 18, 23)", "rgb(231, 234, 240)") if scheme == "dark" else \
        ("rgb(243, 244, 247)", "rgb(27, 31, 39)")
    assert (background, text) == expected, (scheme, background, text)
    if size_name == "desktop":  # the phone layout hides some of these (the member list)
        assert await contrast_problems(page, texts) == [], (scheme, name)
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], (name, size_name, width)  # type: ignore[index]
    if size_name != "narrow":
        await page.screenshot(path=SCREENSHOTS / f"{name}-{size_name}-{scheme}.png")


async def test_home_page_one_name_form_live_rooms(server_url: str, new_context: NewContext,
                                                  make_client: Callable[..., Any]) -> None:
    page = await (await new_context()).new_page()
    await page.goto(server_url)
    # One way to choose a name: the form, and nothing else asking for one.
    await expect(page.locator("#name")).to_be_visible()
    await expect(page.get_by_role("textbox", name=re.compile("display name", re.IGNORECASE))).to_have_count(1)
    await expect(page.get_by_role("button", name=re.compile("choose a name|change name", re.IGNORECASE))
                 .locator("visible=true")).to_have_count(0)
    await expect(page.locator("#name-cancel")).to_be_hidden()
    await sign_in(page, "Ana")
    await expect(page.locator("#whoami")).to_contain_text("Signed in as Ana")

    # ... and one way to change it, from the header; cancelling keeps the old name.
    await page.click("#change-name")
    await expect(page.locator("#name")).to_have_value("Ana")
    await page.click("#name-cancel")
    await expect(page.locator("#identity")).to_be_hidden()
    await expect(page.locator("#whoami-name")).to_have_text("Ana")
    await page.click("#change-name")
    await page.fill("#name", "Bea")
    await page.press("#name", "Enter")
    await expect(page.locator("#identity")).to_be_hidden()
    await expect(page.locator("#whoami-name")).to_have_text("Bea")

    # Public rooms with people online, updated without reloading.
    room = unique_room("live")
    entry = page.locator("#rooms li", has_text=f"#{room}")
    await expect(entry).to_have_count(0)
    first = await make_client("Cyd")
    await first.call("join", {"room": room})
    await expect(entry).to_contain_text("1 online")
    second = await make_client("Dan")
    await second.call("join", {"room": room})
    await expect(entry).to_contain_text("2 online")
    await entry.get_by_role("link").click()
    await expect(page).to_have_url(f"{server_url}/chat/{room}")
    await expect(page.locator("#members")).to_contain_text("Bea")


async def test_keyboard_only_with_visible_focus(server_url: str, new_context: NewContext) -> None:
    context = await signed_in_context(new_context, server_url, "Ana")
    page = await context.new_page()
    await page.goto(server_url)
    # Tab from the top of the page to the room name field, each stop with a visible focus ring.
    for _ in range(8):
        await page.keyboard.press("Tab")
        assert await focus_ring(page), await page.evaluate("() => document.activeElement.outerHTML")
        if await page.evaluate("() => document.activeElement.id") == "room-name":
            break
    await expect(page.locator("#room-name")).to_be_focused()
    room = unique_room("keys")
    await page.keyboard.type(room)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{server_url}/chat/{room}")
    # The composer has the focus once the room is joined.
    await expect(page.locator("#text")).to_be_focused()
    await page.keyboard.type("typed, never clicked")
    await page.keyboard.press("Enter")
    await expect(page.locator(f"{STORED} .text")).to_have_text(["typed, never clicked"])
    await page.keyboard.press("Tab")
    await expect(page.locator("#send")).to_be_focused()
    assert await focus_ring(page)
    # Back past the composer: the latest message's actions, shown while focused, then the conversation.
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    delete = page.get_by_role("button", name="Delete your message")
    await expect(delete).to_be_focused()
    await expect(delete).to_be_visible()
    assert await focus_ring(page)
    for _ in range(4):  # Edit, React, Reply, then the conversation itself
        await page.keyboard.press("Shift+Tab")
        assert await focus_ring(page), await page.evaluate("() => document.activeElement.outerHTML")
    await expect(page.locator("#scroller")).to_be_focused()  # the conversation scrolls with the arrow keys


async def focus_ring(page: Page) -> bool:
    """Whether the focused element draws an outline of at least 2 px."""
    return bool(await page.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        return style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    }"""))


async def test_private_room_from_the_home_page_on_a_phone(server_url: str, new_context: NewContext) -> None:
    context = await new_context(viewport={"width": 360, "height": 740})
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server_url)
    ana = await context.new_page()
    await ana.goto(server_url)
    await sign_in(ana, "Ana")
    await ana.click("#create-private")
    await ana.click("#copy-private")
    link = await ana.evaluate("() => navigator.clipboard.readText()")
    assert re.fullmatch(rf"{re.escape(server_url)}/invite/\S+", link), link
    bob = await open_chat(new_context, link, "Bob")
    await expect(bob.locator(".room-title")).to_have_text("Private room")
    await ana.click("#open-private")
    await expect(ana.locator("#members")).to_contain_text("Bob")
    assert await ana.evaluate("() => document.documentElement.scrollWidth") <= 360
