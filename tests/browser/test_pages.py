"""The pages as a person uses them: real Chromium, real server process.

Every assertion is about what is on screen (or must not be: scripts run
from message text, dialogs, CSP violations).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import jwt
from playwright.async_api import ConsoleMessage, expect

from tests.browser.helpers import (
    CONFIRMED_TEXTS,
    MESSAGES,
    STORED,
    NewContext,
    assert_exactly,
    contrast_problems,
    cut_connection,
    open_chat,
    restore_connection,
    send,
    sign_in,
    unique_room,
)
from tests.conftest import SECRET_KEY


async def test_two_users_chat(server_url: str, new_context: NewContext) -> None:
    url = f"{server_url}/chat/{unique_room()}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")

    await expect(ana.locator("#members")).to_contain_text("Bob")
    await expect(bob.locator("#members")).to_contain_text("Ana")

    await send(ana, "hello from A")
    await assert_exactly(bob, ["hello from A"])
    await send(bob, "hello from B")
    for page in (ana, bob):
        await assert_exactly(page, ["hello from A", "hello from B"])
        await expect(page.locator(f"{MESSAGES} .author")).to_have_text(["Ana", "Bob"])


async def test_markup_in_messages_and_names_is_shown_as_text(server_url: str, new_context: NewContext) -> None:
    url = f"{server_url}/chat/{unique_room()}"
    attacker_name = "<b>Mal</b>"
    payload = "<img src=x onerror=alert(1)>"
    mal = await open_chat(new_context, url, attacker_name)
    ana = await open_chat(new_context, url, "Ana")
    dialogs: list[str] = []
    for page in (mal, ana):
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    await send(mal, payload)

    await expect(ana.locator(CONFIRMED_TEXTS)).to_have_text([payload])
    await expect(ana.locator(f"{MESSAGES} .author")).to_have_text([attacker_name])
    await expect(ana.locator("#members")).to_contain_text(attacker_name)
    await ana.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert await ana.locator("#messages img").count() == 0
    assert await ana.locator("#members b").count() == 0
    assert dialogs == []


async def test_typing_indicator(server_url: str, new_context: NewContext) -> None:
    url = f"{server_url}/chat/{unique_room()}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")

    await expect(bob.locator("#typing")).to_have_text("")
    await ana.locator("#text").press_sequentially("hel")
    await expect(bob.locator("#typing")).to_have_text("Ana is typing…")
    await expect(ana.locator("#typing")).to_have_text("")  # not about oneself

    await ana.click("#send")  # sending ends typing
    await expect(bob.locator("#typing")).to_have_text("")
    await assert_exactly(bob, ["hel"])


async def test_reconnect_catches_up_without_gaps_or_duplicates(server_url: str, new_context: NewContext) -> None:
    url = f"{server_url}/chat/{unique_room()}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")
    await send(bob, "before")
    await assert_exactly(ana, ["before"])

    await cut_connection(ana)
    missed = ["missed 1", "missed 2", "missed 3"]
    for text in missed:
        await send(bob, text)
    await assert_exactly(bob, ["before", *missed])
    assert await ana.locator(CONFIRMED_TEXTS).all_text_contents() == ["before"]  # really offline

    await restore_connection(ana)
    await assert_exactly(ana, ["before", *missed])

    # Left to itself (no test hook holding it down), the page reconnects on its own too.
    await ana.evaluate("() => window.chatSocket.io.engine.close()")
    await expect(ana.locator("#status")).to_have_text("online")
    await expect(ana.locator("#text")).to_be_enabled()
    await send(bob, "after")
    await assert_exactly(ana, ["before", *missed, "after"])


async def test_server_restart_with_history_lost(start_server: Callable[..., Any],
                                                new_context: NewContext) -> None:
    server = start_server()
    url = f"{server.url}/chat/{unique_room()}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")
    await send(bob, "old 1")
    await send(bob, "old 2")
    await assert_exactly(ana, ["old 1", "old 2"])

    # Same port and key, empty memory: a new epoch, and seq starts again at 1.
    server.stop()
    await expect(ana.locator("#status")).not_to_have_text("online")
    server.start()
    for page in (ana, bob):
        await expect(page.locator("#status")).to_have_text("online", timeout=20_000)
        await expect(page.locator("#members")).to_contain_text("Ana")
        await expect(page.locator("#members")).to_contain_text("Bob")
    await send(bob, "new 1")
    for page in (ana, bob):
        await assert_exactly(page, ["new 1"])


async def test_message_written_offline_is_sent_once_after_reconnect(
        server_url: str, new_context: NewContext) -> None:
    url = f"{server_url}/chat/{unique_room()}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")

    await cut_connection(ana)
    await send(ana, "written offline")
    await expect(ana.locator(f"{MESSAGES}.pending .text")).to_have_text(["written offline"])
    await bob.wait_for_timeout(300)
    assert await bob.locator(CONFIRMED_TEXTS).count() == 0

    await restore_connection(ana)
    for page in (ana, bob):
        await assert_exactly(page, ["written offline"])


async def test_private_room_by_invite(server_url: str, new_context: NewContext) -> None:
    context = await new_context()
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server_url)
    ana = await context.new_page()
    await ana.goto(server_url)
    await sign_in(ana, "Ana")
    await ana.click("#create-private")
    # The home page shows the invite link; one click copies it.
    await ana.click("#copy-private")
    await expect(ana.locator("#copy-private-result")).to_contain_text("Copied")
    invite_link = await ana.evaluate("() => navigator.clipboard.readText()")
    assert invite_link.startswith(f"{server_url}/invite/")
    await expect(ana.locator("#private-link")).to_have_value(invite_link)
    await ana.click("#open-private")
    await expect(ana).to_have_url(invite_link)
    await expect(ana.locator("#text")).to_be_enabled()
    assert await ana.locator("#invite-link").input_value() == invite_link
    room = await ana.locator("#chat").get_attribute("data-room")
    assert room and len(room) >= 16

    bob = await open_chat(new_context, invite_link, "Bob")
    await expect(bob.locator("#members")).to_contain_text("Ana")
    await expect(ana.locator("#members")).to_contain_text("Bob")
    await send(ana, "just between us")
    await assert_exactly(bob, ["just between us"])
    await send(bob, "indeed")
    await assert_exactly(ana, ["just between us", "indeed"])

    cyd = await open_chat(new_context, f"{server_url}/chat/{room}", "Cyd", expect_joined=False)
    await expect(cyd.locator("#error")).to_have_text("This room is private and you are not a member.")
    await expect(cyd.locator(MESSAGES)).to_have_count(0)
    await expect(cyd.locator("#members .member")).to_have_count(0)
    await expect(cyd.locator("#text")).to_be_disabled()


async def test_home_page_validates_room_names_and_lists_active_rooms(
        server_url: str, new_context: NewContext) -> None:
    room = unique_room("home")
    await open_chat(new_context, f"{server_url}/chat/{room}", "Ana")

    page = await (await new_context()).new_page()
    await page.goto(server_url)
    await sign_in(page, "Bob")
    await expect(page.locator("#rooms")).to_contain_text(f"#{room}")

    await page.fill("#room-name", "no spaces allowed")
    await page.click("#room-form button[type=submit]")
    await expect(page.locator("#room-error")).to_be_visible()
    await expect(page).to_have_url(f"{server_url}/")

    await page.fill("#room-name", room)
    await page.click("#room-form button[type=submit]")
    await expect(page).to_have_url(f"{server_url}/chat/{room}")
    # The name chosen on the home page carries over: no second form.
    await expect(page.locator("#members")).to_contain_text("Ana")
    await expect(page.locator("#members")).to_contain_text("Bob")
    await expect(page.locator("#identity")).to_be_hidden()


async def test_name_rejected_by_server_is_explained(server_url: str, new_context: NewContext) -> None:
    page = await (await new_context()).new_page()
    await page.goto(server_url)
    await page.fill("#name", "   ")
    await page.click("#name-form button[type=submit]")
    await expect(page.locator("#name-error")).to_have_text("Please enter a name.")

    # 33 characters: the server's invalid_name message is shown, the form stays.
    await page.fill("#name", "x" * 33)
    await page.click("#name-form button[type=submit]")
    await expect(page.locator("#name-error")).not_to_have_text("Please enter a name.")
    await expect(page.locator("#name-error")).to_be_visible()
    await expect(page.locator("#identity")).to_be_visible()
    await expect(page.locator("#whoami")).to_be_hidden()

    await page.fill("#name", "Ana")
    await page.click("#name-form button[type=submit]")
    await expect(page.locator("#identity")).to_be_hidden()
    await expect(page.locator("#whoami-name")).to_have_text("Ana")


async def test_stale_token_asks_for_a_name_again(server_url: str, new_context: NewContext) -> None:
    page = await (await new_context()).new_page()
    await page.goto(server_url)
    await page.evaluate("""() => localStorage.setItem("chat.session", JSON.stringify(
        {token: "not-a-valid-token", user: {id: "gone", name: "Old"}}))""")
    await page.goto(f"{server_url}/chat/{unique_room()}")
    # The server refuses the token at connect: the page asks for a name instead of hanging.
    await sign_in(page, "Ana")
    await expect(page.locator("#status")).to_have_text("online")
    await expect(page.locator("#members")).to_contain_text("Ana")
    await expect(page.locator("#whoami-name")).to_have_text("Ana")
    await send(page, "back again")
    await assert_exactly(page, ["back again"])


async def test_an_expired_token_is_renewed_and_the_user_keeps_their_messages(
        server_url: str, new_context: NewContext) -> None:
    """Back after the token's lifetime: no name form, the same user, and the messages
    written before still show as this user's own."""
    room = unique_room()
    ana = await open_chat(new_context, f"{server_url}/chat/{room}", "Ana")
    await send(ana, "before the break")
    await assert_exactly(ana, ["before the break"])
    session = await ana.evaluate("() => JSON.parse(localStorage.getItem('chat.session'))")
    expired = jwt.encode({"sub": session["user"]["id"], "name": "Ana", "exp": int(time.time()) - 86400},
                         SECRET_KEY, algorithm="HS256")
    later = await (await new_context()).new_page()
    await later.goto(server_url)
    await later.evaluate("session => localStorage.setItem('chat.session', JSON.stringify(session))",
                         {**session, "token": expired})
    await later.goto(f"{server_url}/chat/{room}")
    await expect(later.locator("#status")).to_have_text("online")
    await expect(later.locator("#name-form")).to_be_hidden()
    await expect(later.locator("#whoami-name")).to_have_text("Ana")
    stored = await later.evaluate("() => JSON.parse(localStorage.getItem('chat.session'))")
    assert stored["user"] == session["user"] and stored["token"] != expired
    await expect(later.locator(f"{MESSAGES}.mine")).to_have_count(1)


async def test_too_large_message_is_refused_and_kept(server_url: str, new_context: NewContext) -> None:
    ana = await open_chat(new_context, f"{server_url}/chat/{unique_room()}", "Ana")
    text = "x" * 4001
    await send(ana, text)
    # Refused inline, next to the message; the text goes back into the composer to be shortened.
    failed = ana.locator(f"{MESSAGES}.failed")
    await expect(failed.locator(".send-state")).to_have_text(re.compile(r"Not sent: too long \(4,001 of 4,000"))
    await expect(ana.locator("#text")).to_have_value(text)
    await expect(ana.locator("#counter")).to_have_text("1 character too many")
    await expect(ana.locator(STORED)).to_have_count(0)
    assert await contrast_problems(ana, [f"{MESSAGES}.failed .send-state", f"{MESSAGES}.failed .dismiss"]) == []
    await failed.get_by_role("button", name="Dismiss").click()
    await expect(ana.locator(MESSAGES)).to_have_count(0)


async def test_rate_limited_messages_are_retried(start_server: Callable[..., Any],
                                                new_context: NewContext) -> None:
    server = start_server(RATE_LIMIT="2")
    base = server.url
    ana = await open_chat(new_context, f"{base}/chat/{unique_room()}", "Ana")
    texts = ["one", "two", "three"]
    for text in texts:
        await send(ana, text)
    await expect(ana.locator(f"{MESSAGES}.pending .send-state").last).to_have_text(
        re.compile(r"Rate limited: retrying in \d+ s"))
    # retry_after is at most the 10 s window
    await expect(ana.locator(CONFIRMED_TEXTS)).to_have_text(texts, timeout=15_000)
    await expect(ana.locator(f"{MESSAGES}.pending")).to_have_count(0)


async def test_pages_load_without_csp_violations(server_url: str, new_context: NewContext) -> None:
    context = await new_context()
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _collect_error(problems, message))
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))

    await page.goto(server_url)
    await sign_in(page, "Ana")
    await page.goto(f"{server_url}/chat/{unique_room()}")
    await expect(page.locator("#text")).to_be_enabled()
    await send(page, "hi")
    await expect(page.locator(CONFIRMED_TEXTS)).to_have_text(["hi"])
    await page.goto(f"{server_url}/invite/no-such-invite")
    await expect(page.locator("#not-found-message")).to_be_visible()

    assert not [p for p in problems if "Content Security Policy" in p], problems
    assert not [p for p in problems if p.startswith("uncaught")], problems


def _collect_error(problems: list[str], message: ConsoleMessage) -> None:
    if message.type in ("error", "warning"):
        problems.append(message.text)


async def test_a_skipped_live_message_is_fetched_from_history(server_url: str, new_context: NewContext) -> None:
    room = unique_room()
    url = f"{server_url}/chat/{room}"
    ana = await open_chat(new_context, url, "Ana")
    bob = await open_chat(new_context, url, "Bob")
    await send(bob, "one")
    await assert_exactly(ana, ["one"])
    # Take Ana's connection out of the room behind the page's back, so live delivery skips her,
    # then put it back without telling the page: the next live message arrives after a gap.
    await ana.evaluate(f"""() => new Promise(done => window.chatSocket.emit("leave", {{room: "{room}"}}, done))""")
    await send(bob, "two")
    await send(bob, "three")
    await assert_exactly(bob, ["one", "two", "three"])
    await ana.evaluate(f"""() => new Promise(done => window.chatSocket.emit("join", {{room: "{room}"}}, done))""")
    await send(bob, "four")
    await assert_exactly(ana, ["one", "two", "three", "four"])
