"""The chat page behind an app (contract v2): owners and moderators see roles and moderate
from the member list; a removed or banned user is told why and left on no dead page; the
app's `notify` shows as a notice."""

from __future__ import annotations

import json

from playwright.async_api import Page, expect

from tests.backend import call, minted
from tests.browser.helpers import NewContext, send, unique_room


async def open_as(new_context: NewContext, url: str, sub: str, name: str) -> Page:
    """The app's user `sub` opens `url`, with a session the app's backend minted."""
    session = {"token": minted(sub, name), "user": {"id": sub, "name": name}}
    context = await new_context()
    await context.add_init_script(f"localStorage.setItem('chat.session', {json.dumps(json.dumps(session))})")
    page = await context.new_page()
    await page.goto(url)
    await expect(page.locator("#status")).to_have_text("online")
    await expect(page.locator("#text")).to_be_enabled()
    return page


async def test_an_owner_mutes_and_kicks_from_the_member_list(new_context: NewContext, server_url: str):
    room = unique_room("moderated")
    owner_id, member_id = f"{room}-owner", f"{room}-member"
    await call(server_url, "PUT", f"/api/rooms/{room}/members/{owner_id}", {"name": "Olga", "role": "owner"})
    url = f"{server_url}/chat/{room}"
    owner = await open_as(new_context, url, owner_id, "Olga")
    member = await open_as(new_context, url, member_id, "Mark")
    row = owner.locator(f'#members [data-user-id="{member_id}"]')
    await expect(owner.locator(f'#members [data-user-id="{owner_id}"] .role')).to_have_text("owner")
    await expect(row).to_contain_text("Mark")
    await expect(member.locator("#members .moderate")).to_have_count(0)  # a member moderates nobody

    await row.get_by_role("button", name="Mute 10 min: Mark").click()
    await expect(member.locator("#notice")).to_contain_text("Mark was muted by Olga until")
    await send(member, "am I muted?")
    await expect(member.locator("#messages .message.failed")).to_contain_text("you may not write in this room")

    await row.get_by_role("button", name="Kick: Mark").click()
    await expect(member.locator("#ended")).to_be_visible()
    await expect(member.locator("#ended")).to_contain_text("You were removed from this room by a moderator.")
    await expect(member.locator("#ended a")).to_have_attribute("href", "/")
    await expect(member.locator("#text")).to_be_disabled()
    await expect(owner.locator("#members")).not_to_contain_text("Mark")


async def test_a_banned_user_is_told_and_cannot_come_back(new_context: NewContext, server_url: str):
    room = unique_room("banned")
    url = f"{server_url}/chat/{room}"
    page = await open_as(new_context, url, f"{room}-troll", "Troll")
    status, _ = await call(server_url, "PUT", f"/api/rooms/{room}/bans/{room}-troll", {"seconds": 3600})
    assert status == 200
    await expect(page.locator("#ended")).to_contain_text("You were banned from this room.")
    await expect(page.locator("#text")).to_be_disabled()
    await page.reload()
    await expect(page.locator("#error")).to_have_text("You are banned from this room.")


async def test_a_notify_shows_as_a_notice_and_a_revoke_signs_the_page_out(new_context: NewContext,
                                                                          server_url: str):
    room = unique_room("notified")
    sub = f"{room}-user"
    page = await open_as(new_context, f"{server_url}/chat/{room}", sub, "Nora")
    status, _ = await call(server_url, "POST", f"/api/users/{sub}/events",
                           {"data": {"text": "Your order <b>shipped</b>"}})
    assert status == 202
    await expect(page.locator("#notice")).to_have_text("Your order <b>shipped</b>")  # as text, never as markup
    await expect(page.locator("#notice b")).to_have_count(0)
    await call(server_url, "POST", f"/api/users/{sub}/disconnect", {"revoke": True})
    await expect(page.locator("#ended")).to_contain_text("You were signed out")
    await expect(page.locator("#status")).to_have_text("offline")
    await expect(page.locator("#text")).to_be_disabled()
