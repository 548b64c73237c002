"""What the browser tests share: signing in, opening a room, sending, and checks
of what the page shows."""

from __future__ import annotations

import json
import re
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import BrowserContext, Locator, Page, expect

from tests.chat_client import new_session

NewContext = Callable[..., Awaitable[BrowserContext]]

expect.set_options(timeout=10_000)

MESSAGES = "#messages .message"
STORED = "#messages .message[data-seq]"  # stored by the server (not pending, not refused)
CONFIRMED_TEXTS = f"{STORED} .text"


def unique_room(prefix: str = "lobby") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def sign_in(page: Page, name: str) -> None:
    """Fill the name form that a first visit shows."""
    await expect(page.locator("#identity")).to_be_visible()
    await page.fill("#name", name)
    await page.click("#name-form button[type=submit]")
    await expect(page.locator("#identity")).to_be_hidden()


async def open_chat(new_context: NewContext, url: str, name: str, *, expect_joined: bool = True) -> Page:
    """A new user (own browser profile) opens `url` and picks `name`."""
    page = await (await new_context()).new_page()
    await page.goto(url)
    await sign_in(page, name)
    await expect(page.locator("#status")).to_have_text("online")
    if expect_joined:
        # The composer opens once the join ack arrived; the member list includes us.
        await expect(page.locator("#text")).to_be_enabled()
        await expect(page.locator("#members")).to_contain_text(name)
    return page


async def send(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.click("#send")


async def shown_seqs(page: Page) -> list[int]:
    values = await page.locator(STORED).evaluate_all(
        "items => items.map(item => Number(item.dataset.seq))")
    return [int(value) for value in values]


async def assert_exactly(page: Page, texts: list[str]) -> None:
    """The page shows these confirmed messages, each once, in this order, none pending."""
    await expect(page.locator(CONFIRMED_TEXTS)).to_have_text(texts)
    await expect(page.locator(f"{MESSAGES}.pending")).to_have_count(0)
    seqs = await shown_seqs(page)
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


async def cut_connection(page: Page) -> None:
    """Drop the page's connection as a network failure would, and keep it down
    until `restore_connection` (so that the test decides what happens meanwhile)."""
    await page.evaluate("""() => {
        window.chatSocket.io.reconnection(false);
        window.chatSocket.io.engine.close();
    }""")
    await expect(page.locator("#status")).to_have_text("reconnecting…")


async def restore_connection(page: Page) -> None:
    await page.evaluate("""() => {
        window.chatSocket.io.reconnection(true);
        window.chatSocket.connect();
    }""")
    await expect(page.locator("#status")).to_have_text("online")


async def signed_in_context(new_context: NewContext, server_url: str, name: str, **options: Any) -> BrowserContext:
    """A browser profile that already holds a session for `name` (no name form), with
    `options` for the context (viewport, color_scheme, ...)."""
    session = await new_session(server_url, name)
    context = await new_context(**options)
    await context.add_init_script(f"localStorage.setItem('chat.session', {json.dumps(json.dumps(session))})")
    return context


# WCAG contrast of an element's text against the first opaque background behind it.
CONTRAST = """element => {
  const rgb = (value) => value.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    const [R, G, B] = [r, g, b].map(linear);
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  let node = element, background = null;
  while (node && !background) {
    const value = getComputedStyle(node).backgroundColor;
    const parts = rgb(value);
    if (parts.length === 3 || parts[3] === 1) background = parts.slice(0, 3);
    node = node.parentElement;
  }
  background ??= rgb(getComputedStyle(document.documentElement).backgroundColor);
  const [a, b] = [luminance(rgb(getComputedStyle(element).color)), luminance(background)];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""

async def contrast_problems(page: Page, selectors: list[str]) -> list[str]:
    problems = []
    for selector in selectors:
        elements = page.locator(selector)
        assert await elements.count(), f"nothing matches {selector}"
        ratio = await elements.first.evaluate(CONTRAST)
        if ratio < 4.5:
            problems.append(f"{selector}: {ratio:.2f}")
    return problems


# How the new pages are looked at: desktop and phone widths (a phone has a touch
# screen and no pointer hovering), each in the light and the dark colour scheme.
LOOKS: dict[str, dict[str, Any]] = {
    f"{size}-{scheme}": {**view, "color_scheme": scheme}
    for size, view in {
        "desktop": {"viewport": {"width": 1280, "height": 800}},
        "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    }.items()
    for scheme in ("light", "dark")
}


# The script errors of each page `open_page` opened.
SCRIPT_ERRORS: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


async def open_page(context: BrowserContext, url: str, *, joined: bool = True) -> Page:
    """A new tab of `context` (a profile that holds a session) on `url`, once online and joined;
    it fails the test on any script error."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    SCRIPT_ERRORS[page] = errors
    await page.goto(url)
    if joined:
        await expect(page.locator("#status")).to_have_text("online")
        await expect(page.locator("#text")).to_be_enabled()
    return page


async def session_context(new_context: NewContext, session: dict[str, Any], **options: Any) -> BrowserContext:
    """A browser profile holding `session` (`{token, user}`), with `options` for the context."""
    context = await new_context(**options)
    await context.add_init_script(f"localStorage.setItem('chat.session', {json.dumps(json.dumps(session))})")
    return context


def no_script_errors(*pages: Page) -> None:
    """Fail if a page opened by `open_page` logged a script error or an uncaught exception."""
    for page in pages:
        assert SCRIPT_ERRORS.get(page, []) == []


async def fits_width(page: Page) -> None:
    """Nothing scrolls sideways."""
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


def message(page: Page, text: str) -> Locator:
    """The stored message whose text is exactly `text`."""
    return page.locator(STORED).filter(has=page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$")))


def message_at(page: Page, seq: int) -> Locator:
    return page.locator(f"{STORED}[data-seq='{seq}']")


async def click_action(item: Locator, name: str) -> None:
    """Show the toolbar of the message `item` as a person would (point at it, or on a touch
    screen tap it, away from its controls) and click its button `name`."""
    if await item.evaluate("() => matchMedia('(hover: none)').matches"):
        await item.tap(position={"x": 4, "y": 4})
    else:
        await item.hover()
    await item.get_by_role("button", name=name).click()
