"""The routes of the app's backend, each with `Authorization: Bearer <API_KEY>`: rooms it
manages and their members, bans and mutes, and reaching a user on every device."""

from __future__ import annotations

import logging

from aiohttp import web

from .errors import InvalidPayload, TooLarge
from .http_input import read_body, require_api_key, user_id_param
from .keys import editing_key, membership_key, moderation_key, sessions_key
from .membership import RosterEntry
from .models import (
    NAME_RULE,
    TITLE_MAX,
    DisconnectUserRequest,
    EditRequest,
    Member,
    NotifyRequest,
    PutMemberRequest,
    PutRoomRequest,
    SanctionRequest,
    User,
    clean_name,
    compact_json,
)
from .moderation import Action

log = logging.getLogger(__name__)
NOTIFY_MAX_BYTES = 65_536  # of a `notify`'s data, as JSON
WHAT = "the backend API"


def _name(raw: str, field: str) -> str:
    name = clean_name(raw)
    if name is None:
        raise InvalidPayload(f"{field} is {NAME_RULE}")
    return name


def _entry(entry: RosterEntry) -> dict[str, object]:
    return {**entry.member.as_dict(), "online": entry.online}


async def put_room(request: web.Request) -> web.Response:
    """Create the private room with this id and these members, or update it: 201 or 200."""
    require_api_key(request, WHAT)
    room = request.match_info["room"]
    put = await read_body(request, PutRoomRequest)
    title = clean_name(put.title, limit=TITLE_MAX) if put.title is not None else None
    if put.title is not None and title is None:
        raise InvalidPayload(f"title is 1 to {TITLE_MAX} characters, without control characters")
    members = [Member(User(member.id, _name(member.name, "members[].name")), member.role) for member in put.members]
    if len({member.user.id for member in members}) != len(members):
        raise InvalidPayload("members lists a user twice")
    membership = request.app[membership_key]
    created, info = await membership.put_private_room(room, title, members)
    roster = await membership.roster(room)
    return web.json_response({"room": info.room, "private": info.private, "title": info.title,
                              "members": [entry.member.as_dict() for entry in roster]}, status=201 if created else 200)


async def list_members(request: web.Request) -> web.Response:
    require_api_key(request, WHAT)
    roster = await request.app[membership_key].roster(request.match_info["room"])
    return web.json_response({"members": [_entry(entry) for entry in roster]})


async def put_member(request: web.Request) -> web.Response:
    require_api_key(request, WHAT)
    user_id = user_id_param(request)
    put = await read_body(request, PutMemberRequest)
    name = _name(put.name, "name") if put.name is not None else None
    member = await request.app[membership_key].put_member(request.match_info["room"], user_id, name, put.role)
    return web.json_response({"member": member.as_dict()})


async def remove_member(request: web.Request) -> web.Response:
    require_api_key(request, WHAT)
    await request.app[membership_key].remove_member(request.match_info["room"], user_id_param(request))
    return web.Response(status=204)


async def put_sanction(request: web.Request) -> web.Response:
    """Ban or mute a user in a room (`{"seconds"?, "reason"?}`; no seconds: for good)."""
    require_api_key(request, WHAT)
    put = await read_body(request, SanctionRequest)
    action: Action = "ban" if request.match_info["kind"] == "bans" else "mute"
    announced = await request.app[moderation_key].act(None, request.match_info["room"], action,
                                                       user_id_param(request), put.seconds, put.reason)
    return web.json_response({"moderation": announced})


async def lift_sanction(request: web.Request) -> web.Response:
    require_api_key(request, WHAT)
    action: Action = "unban" if request.match_info["kind"] == "bans" else "unmute"
    announced = await request.app[moderation_key].act(None, request.match_info["room"], action,
                                                       user_id_param(request))
    return web.json_response({"moderation": announced})


def _seq_param(request: web.Request) -> int:
    """The message `seq` in the path: a whole number from 1."""
    raw = request.match_info["seq"]
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 2**53:
        raise InvalidPayload("the message seq in the path is a whole number from 1")
    return int(raw)


async def edit_message(request: web.Request) -> web.Response:
    """Change any message's text: 200 with the message in its new state."""
    require_api_key(request, WHAT)
    seq = _seq_param(request)
    body = await read_body(request, EditRequest)
    message = await request.app[editing_key].backend_edit(request.match_info["room"], seq, body.text)
    return web.json_response(message)


async def delete_message(request: web.Request) -> web.Response:
    """Delete any message: 200 with the message as deleted."""
    require_api_key(request, WHAT)
    message = await request.app[editing_key].backend_delete(request.match_info["room"], _seq_param(request))
    return web.json_response(message)


async def disconnect_user(request: web.Request) -> web.Response:
    """End every connection of a user; with `revoke`, refuse the user's older tokens from now on."""
    require_api_key(request, WHAT)
    user_id = user_id_param(request)
    disconnect = await read_body(request, DisconnectUserRequest)
    await request.app[sessions_key].disconnect_user(user_id, revoke=disconnect.revoke)
    return web.json_response({"user": user_id, "revoked": disconnect.revoke}, status=202)


async def notify_user(request: web.Request) -> web.Response:
    """Deliver the app's `data` to every connection of a user, as `notify`."""
    require_api_key(request, WHAT)
    user_id = user_id_param(request)
    notify = await read_body(request, NotifyRequest)
    if len(compact_json(notify.data)) > NOTIFY_MAX_BYTES:
        raise TooLarge(f"data is larger than {NOTIFY_MAX_BYTES} bytes as JSON")
    await request.app[sessions_key].notify(user_id, notify.data)
    return web.json_response({"user": user_id}, status=202)


def add_backend_routes(app: web.Application) -> None:
    """Register the backend's routes."""
    app.router.add_put("/api/rooms/{room}", put_room)
    app.router.add_get("/api/rooms/{room}/members", list_members)
    app.router.add_put("/api/rooms/{room}/members/{user_id}", put_member)
    app.router.add_delete("/api/rooms/{room}/members/{user_id}", remove_member)
    app.router.add_put("/api/rooms/{room}/{kind:bans|mutes}/{user_id}", put_sanction)
    app.router.add_delete("/api/rooms/{room}/{kind:bans|mutes}/{user_id}", lift_sanction)
    app.router.add_patch("/api/rooms/{room}/messages/{seq}", edit_message)
    app.router.add_delete("/api/rooms/{room}/messages/{seq}", delete_message)
    app.router.add_post("/api/users/{user_id}/disconnect", disconnect_user)
    app.router.add_post("/api/users/{user_id}/events", notify_user)
