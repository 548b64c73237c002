"""Messages that change (contract v2), as people use them on the room page: editing one's
own message in place, deleting it (or anyone's, as an owner or moderator), reactions and
their picker, and replies with the quote that leads to the original. Each at desktop and
phone widths, light and dark; user text is shown as text, never run as markup."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.backend import call, minted
from tests.browser.helpers import (
    LOOKS,
    STORED,
    NewContext,
    click_action,
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
from tests.browser.test_room_page import publish
from tests.chat_client import new_session

pytestmark = pytest.mark.parametrize("look", LOOKS.values(), ids=LOOKS.keys())

HOSTILE = "<img src=x onerror=alert(1)> <b>bold?</b>"


async def open_user(new_context: NewContext, url: str, session: dict[str, Any], look: dict[str, Any]) -> Page:
    page = await open_page(await session_context(new_context, session, **look), url)
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    return page


async def two_users(server_url: str, new_context: NewContext, look: dict[str, Any],
                    names: tuple[str, str] = ("Ana", "Bob")) -> tuple[str, Page, Page]:
    room = unique_room("changes")
    url = f"{server_url}/chat/{room}"
    first = await open_user(new_context, url, await new_session(server_url, names[0]), look)
    second = await open_user(new_context, url, await new_session(server_url, names[1]), look)
    await expect(first.locator("#members")).to_contain_text(names[1])
    return room, first, second


async def sent(page: Page, text: str) -> int:
    """Send `text` from the page's composer; its seq once stored."""
    await send(page, text)
    item = page.locator(STORED).filter(has_text=text).last
    await expect(item).to_be_visible()
    return int(await item.get_attribute("data-seq") or 0)


async def screenshot(page: Page, name: str, look: dict[str, Any]) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    size = "phone" if look.get("is_mobile") else "desktop"
    await page.screenshot(path=SCREENSHOTS / f"{name}-{size}-{look['color_scheme']}.png")


async def test_own_messages_are_edited_in_place_and_deleted(server_url: str, new_context: NewContext,
                                                            look: dict[str, Any]) -> None:
    _, ana, bob = await two_users(server_url, new_context, look)
    seq = await sent(ana, "helo wrld")
    bobs = await sent(bob, "a message of Bob's")
    mine = message_at(ana, seq)
    # The toolbar shows when the message is pointed at, or tapped on a touch screen.
    toolbar = mine.locator(".message-actions")
    await expect(toolbar).to_have_css("opacity", "0")
    if look.get("has_touch"):
        await mine.tap(position={"x": 4, "y": 4})
        await expect(mine).to_have_class(re.compile(r"\bselected\b"))
    else:
        await mine.hover()
    await expect(toolbar).to_have_css("opacity", "1")
    # One's own message offers Edit and Delete; someone else's neither (we are members, not moderators).
    await expect(mine.get_by_role("button", name="Edit your message")).to_have_count(1)
    await expect(mine.get_by_role("button", name="Delete your message")).to_have_count(1)
    for page, other in ((ana, bobs), (bob, seq)):
        await expect(message_at(page, other).locator(".action.edit, .action.ask-delete")).to_have_count(0)
        await expect(message_at(page, other).get_by_role("button", name=re.compile("^Reply to"))).to_have_count(1)

    # Edit in place: Escape cancels and gives the focus back to Edit.
    await click_action(mine, "Edit your message")
    box = mine.get_by_role("textbox", name="Edit your message")
    await expect(box).to_be_focused()
    await expect(box).to_have_value("helo wrld")
    await expect(mine.locator(".text")).to_have_count(0)  # the box stands where the text was
    await box.fill("something else")
    await box.press("Escape")
    await expect(box).to_have_count(0)
    await expect(mine.locator(".text")).to_have_text("helo wrld")
    await expect(mine.get_by_role("button", name="Edit your message")).to_be_focused()
    await ana.wait_for_timeout(300)
    for page in (ana, bob):
        await expect(message_at(page, seq).locator(".edited-mark")).to_have_count(0)

    # Enter saves (Shift+Enter is a new line); both pages show the new text, marked "edited".
    await click_action(mine, "Edit your message")
    await box.fill("hello world")
    await box.press("Shift+Enter")
    await box.press_sequentially(HOSTILE)
    await box.press("Enter")
    await expect(box).to_have_count(0)
    for page in (ana, bob):
        item = message_at(page, seq)
        await expect(item.locator(".text")).to_have_text(f"hello world\n{HOSTILE}")
        await expect(item.locator(".edited-mark")).to_have_text("edited")
        await expect(item.locator("img, b")).to_have_count(0)
    assert await contrast_problems(ana, [f"{STORED} .edited-mark", f"{STORED}.mine .action",
                                         f"{STORED}:not(.mine) .action"]) == []
    await screenshot(ana, "message-edited", look)

    # An empty edit is not sent: the editor says why.
    await click_action(mine, "Edit your message")
    await box.fill("   ")
    await box.press("Enter")
    await expect(mine.locator(".editor .error")).to_contain_text("cannot be empty")
    await box.press("Escape")

    # Delete asks once more, then leaves "message deleted" in place: no text, reactions or actions.
    await click_action(mine, "Delete your message")
    await expect(mine.locator(".confirm-question")).to_have_text("Delete this message?")
    await expect(mine.get_by_role("button", name="Yes, delete your message")).to_be_focused()
    await mine.get_by_role("button", name="No, keep it").click()
    await expect(mine.locator(".confirm-question")).to_have_count(0)
    await expect(mine.get_by_role("button", name="Delete your message")).to_be_focused()
    await click_action(mine, "Delete your message")
    await mine.get_by_role("button", name="Yes, delete your message").click()
    for page in (ana, bob):
        item = message_at(page, seq)
        await expect(item.locator(".tombstone")).to_have_text("message deleted")
        await expect(item.locator(".text, .reactions, .message-actions, .edited-mark")).to_have_count(0)
        await expect(item.locator(".author")).to_have_text("Ana")
    await expect(message_at(bob, bobs).locator(".text")).to_have_text("a message of Bob's")
    assert await contrast_problems(bob, [f"{STORED} .tombstone"]) == []
    await fits_width(ana)
    no_script_errors(ana, bob)


async def open_as(new_context: NewContext, url: str, sub: str, name: str, look: dict[str, Any]) -> Page:
    """The app's user `sub`, signed in by the app's backend."""
    return await open_user(new_context, url, {"token": minted(sub, name), "user": {"id": sub, "name": name}}, look)


async def test_owners_and_moderators_may_delete_any_message(server_url: str, new_context: NewContext,
                                                            look: dict[str, Any]) -> None:
    room = unique_room("moderated")
    owner_id, moderator_id, member_id = f"{room}-o", f"{room}-m", f"{room}-x"
    await call(server_url, "PUT", f"/api/rooms/{room}/members/{owner_id}", {"name": "Olga", "role": "owner"})
    await call(server_url, "PUT", f"/api/rooms/{room}/members/{moderator_id}", {"name": "Mo", "role": "moderator"})
    url = f"{server_url}/chat/{room}"
    owner = await open_as(new_context, url, owner_id, "Olga", look)
    moderator = await open_as(new_context, url, moderator_id, "Mo", look)
    member = await open_as(new_context, url, member_id, "Max", look)
    first = await sent(member, "spam, spam, spam")
    second = await sent(member, "more spam")
    from_owner = await sent(owner, "house rules")

    # The member may delete only their own; owner and moderator any, and edit only their own.
    await expect(message_at(member, from_owner).locator(".action.ask-delete")).to_have_count(0)
    for page in (owner, moderator):
        await expect(message_at(page, first).get_by_role("button", name="Delete the message from Max")).to_have_count(1)
        await expect(message_at(page, first).locator(".action.edit")).to_have_count(0)
    await expect(message_at(moderator, from_owner).locator(".action.ask-delete")).to_have_count(1)

    for page, seq in ((owner, first), (moderator, second)):
        item = message_at(page, seq)
        await click_action(item, "Delete the message from Max")
        await item.get_by_role("button", name="Yes, delete the message from Max").click()
    for page in (owner, moderator, member):
        for seq in (first, second):
            await expect(message_at(page, seq).locator(".tombstone")).to_have_text("message deleted")
            await expect(message_at(page, seq).locator(".message-actions")).to_have_count(0)
        await expect(message_at(page, from_owner).locator(".text")).to_have_text("house rules")
    await fits_width(owner)
    no_script_errors(owner, moderator, member)


async def test_reactions_show_as_chips_and_toggle(server_url: str, new_context: NewContext,
                                                  look: dict[str, Any]) -> None:
    _, ana, bob = await two_users(server_url, new_context, look)
    seq = await sent(ana, "Lunch at noon?")
    on_bob, on_ana = message_at(bob, seq), message_at(ana, seq)
    await expect(on_bob.locator(".reactions")).to_have_count(0)

    # The picker offers the common emoji; Escape closes it and gives the focus back.
    react = on_bob.get_by_role("button", name="Add a reaction to the message from Ana")
    await click_action(on_bob, "Add a reaction to the message from Ana")
    picker = on_bob.get_by_role("group", name="Pick a reaction")
    await expect(picker.get_by_role("button")).to_have_text(["👍", "❤️", "😂", "🎉", "😮", "😢"])
    await expect(picker.get_by_role("button", name="React with thumbs up")).to_be_focused()
    await expect(react).to_have_attribute("aria-expanded", "true")
    await bob.keyboard.press("Escape")
    await expect(picker).to_have_count(0)
    await expect(react).to_be_focused()

    await click_action(on_bob, "Add a reaction to the message from Ana")
    await picker.get_by_role("button", name="React with thumbs up").click()
    await expect(picker).to_have_count(0)
    for page, mine in ((bob, "true"), (ana, "false")):
        chip = message_at(page, seq).locator(".reaction")
        await expect(chip).to_have_text(["👍1"])
        await expect(chip).to_have_attribute("aria-pressed", mine)
    # Clicking someone's chip adds one's own: the count goes up and the chip is highlighted.
    await on_ana.locator(".reaction", has_text="👍").click()
    for page in (ana, bob):
        await expect(message_at(page, seq).locator(".reaction .count")).to_have_text(["2"])
    await expect(on_ana.locator(".reaction.mine")).to_have_count(1)
    await expect(on_ana.locator(".reaction")).to_have_attribute("aria-label", "thumbs up: 2 people, you included")
    await expect(on_ana.locator(".reaction")).to_be_focused()  # the focus stays on the chip as it is redrawn
    # Keyboard only: a second emoji from the picker.
    await on_ana.get_by_role("button", name="Add a reaction to your message").focus()
    await ana.keyboard.press("Enter")
    await ana.keyboard.press("Tab")
    await expect(on_ana.get_by_role("button", name="React with heart")).to_be_focused()
    await ana.keyboard.press("Enter")
    for page in (ana, bob):
        await expect(message_at(page, seq).locator(".reaction")).to_have_text(["👍2", "❤️1"])
    assert await contrast_problems(bob, [f"{STORED} .reaction.mine", f"{STORED} .reaction:not(.mine)"]) == []
    await screenshot(ana, "reactions", look)
    # Clicking one's own takes it back.
    await on_ana.locator(".reaction", has_text="👍").click()
    for page in (ana, bob):
        await expect(message_at(page, seq).locator(".reaction")).to_have_text(["👍1", "❤️1"])
    await expect(on_ana.locator(".reaction.mine")).to_have_text(["❤️1"])
    await expect(on_bob.locator(".reaction.mine")).to_have_text(["👍1"])
    await expect(ana.locator(".seen-by")).to_have_count(0)  # a public room keeps no receipts
    await fits_width(bob)
    no_script_errors(ana, bob)


async def test_a_reply_quotes_the_original_and_leads_to_it(server_url: str, new_context: NewContext,
                                                           make_client: Callable[..., Any],
                                                           look: dict[str, Any]) -> None:
    room, ana, bob = await two_users(server_url, new_context, look)
    original = await sent(bob, "Who has the keys to <the> office?")
    await publish(server_url, room, [f"filler {index}" for index in range(1, 31)])
    await expect(ana.locator(STORED)).to_have_count(31)

    # Reply from the message's toolbar: the composer says to whom; Escape there lets go of it.
    item = message_at(ana, original)
    await item.scroll_into_view_if_needed()
    await click_action(item, "Reply to the message from Bob")
    bar = ana.locator("#reply-bar")
    await expect(bar).to_be_visible()
    await expect(bar).to_contain_text("Replying to Bob")
    await expect(bar.locator(".quote-text")).to_have_text("Who has the keys to <the> office?")
    await expect(ana.locator("#text")).to_be_focused()
    await ana.keyboard.press("Escape")
    await expect(bar).to_be_hidden()
    await item.scroll_into_view_if_needed()
    await click_action(item, "Reply to the message from Bob")
    await expect(bar).to_be_visible()
    assert await contrast_problems(ana, ["#reply-bar .quote-author", "#reply-bar .quote-text"]) == []
    reply = await sent(ana, "I do.")
    await expect(bar).to_be_hidden()

    for page in (ana, bob):
        quote = message_at(page, reply).locator(".reply-quote")
        await expect(quote.locator(".quote-author")).to_have_text("Bob")
        await expect(quote.locator(".quote-text")).to_have_text("Who has the keys to <the> office?")
        await expect(message_at(page, reply).locator(".text")).to_have_text("I do.")
        # The quote stands above the reply's own text.
        above = await message_at(page, reply).evaluate(
            "e => e.querySelector('.reply-quote').getBoundingClientRect().bottom"
            " <= e.querySelector('.text').getBoundingClientRect().top")
        assert above
    quote_parts = [f"{STORED} .reply-quote .quote-author", f"{STORED} .reply-quote .quote-text"]
    assert await contrast_problems(bob, quote_parts) == []
    await screenshot(bob, "reply", look)

    # Clicking the quote brings the original into view (it is loaded).
    await expect(message_at(bob, original)).not_to_be_in_viewport()
    await message_at(bob, reply).locator(".reply-quote").click()
    await expect(message_at(bob, original)).to_be_in_viewport()
    await expect(message_at(bob, original)).to_be_focused()

    # A reply to a message not loaded says where the original is instead.
    cyd = await make_client("Cyd")
    await cyd.join(room)
    await publish(server_url, room, [f"more {index}" for index in range(1, 60)])
    late = await cyd.send(room, "Re the keys: found them", reply_to=original)
    fresh = await open_user(new_context, f"{server_url}/chat/{room}", await new_session(server_url, "Dee"), look)
    await expect(message_at(fresh, late["seq"]).locator(".quote-author")).to_have_text("Bob")
    await expect(message_at(fresh, original)).to_have_count(0)
    await message_at(fresh, late["seq"]).locator(".reply-quote").click()
    await expect(fresh.locator("#notice")).to_contain_text("scroll up to load older messages")
    await fits_width(fresh)
    no_script_errors(ana, bob, fresh)
