"""The HTTP API under /api, plus /healthz, /readyz and /metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from aiohttp import web
from aiohttp.typedefs import Handler

from .errors import ChatError, InvalidName, InvalidPayload, NotFound
from .http_errors import error_response
from .http_input import bearer, json_object, read_body, require_api_key, signed_in_user
from .keys import (
    draining_key,
    membership_key,
    metrics_key,
    service_key,
    sessions_key,
    settings_key,
    store_key,
    tokens_key,
)
from .models import NAME_RULE, SYSTEM_USER, CreateRoomRequest, HistoryQuery, PublishRequest, User, clean_name, parse

log = logging.getLogger(__name__)
STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


@web.middleware
def api_errors(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Turn refusals under /api into JSON errors; time each API route.

    Other paths go straight to their handler, without a coroutine frame of this
    middleware's (which would live as long as each WebSocket does)."""
    if not request.path.startswith("/api/"):
        return handler(request)
    return _api_errors(request, handler)


async def _api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    metrics = request.app[metrics_key]
    try:
        return await handler(request)
    except ChatError as error:
        metrics.errors.labels(error.code).inc()
        return error_response(error)
    except web.HTTPException as error:
        code = STATUS_CODES.get(error.status)
        if code is None or error.status < 400:
            raise
        metrics.errors.labels(code).inc()
        return web.json_response({"error": {"code": code, "message": error.reason}}, status=error.status)
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        metrics.http_seconds.labels(name).observe(time.perf_counter() - started)


def _anonymous_sessions(request: web.Request) -> None:
    """`not_found` where the app signs its users in (`ANONYMOUS_SESSIONS=off`)."""
    if request.app[settings_key].anonymous_sessions == "off":
        raise NotFound("sessions are issued by the app this chat belongs to: sign in there")


async def create_session(request: web.Request) -> web.Response:
    _anonymous_sessions(request)
    raw = await json_object(request)
    given = raw.get("name")
    name = clean_name(given) if isinstance(given, str) else None
    if name is None:
        raise InvalidName(f"a name is {NAME_RULE}")
    token, user = request.app[tokens_key].issue(name)
    log.debug("session issued", extra={"user": user.id})
    return web.json_response({"token": token, "user": user.as_dict()})


async def renew_session(request: web.Request) -> web.Response:
    """A fresh token for the user an expired (or still valid) token names: same id and name,
    unless the user's tokens were revoked since."""
    _anonymous_sessions(request)
    tokens = request.app[tokens_key]
    old = tokens.renewable(bearer(request))
    await request.app[sessions_key].refuse_revoked(old)
    log.debug("session renewed", extra={"user": old.user.id})
    return web.json_response({"token": tokens.token_for(old.user), "user": old.user.as_dict()})


async def list_rooms(request: web.Request) -> web.Response:
    rooms = await request.app[service_key].online_rooms()
    return web.json_response({"rooms": [{"room": room, "online": online} for room, online in rooms]})


async def create_room(request: web.Request) -> web.Response:
    user = await signed_in_user(request)
    body = await read_body(request, CreateRoomRequest)
    if not body.private:
        raise InvalidPayload("only private rooms are created here; a public room exists once joined")
    room = await request.app[service_key].create_private_room(user, body.capacity)
    return web.json_response({"room": room.room, "invite": f"/invite/{room.invite}", "capacity": room.capacity},
                             status=201)


async def room_history(request: web.Request) -> web.Response:
    user = await signed_in_user(request)
    query = parse(HistoryQuery, dict(request.query))
    page = await request.app[service_key].history(user, request.match_info["room"], query.before_seq, query.limit)
    return web.json_response({"messages": page.messages, "has_more": page.has_more})


async def publish_message(request: web.Request) -> web.Response:
    require_api_key(request, "publishing")
    body = await read_body(request, PublishRequest)
    user = SYSTEM_USER
    if body.user is not None:
        name = clean_name(body.user.name)
        if name is None:
            raise InvalidPayload(f"user.name is {NAME_RULE}")
        user = User(id=body.user.id, name=name)
    message = await request.app[service_key].publish(request.match_info["room"], body.text, user)
    return web.json_response(message, status=201)


async def my_rooms(request: web.Request) -> web.Response:
    """The signed-in user's rooms and the public rooms they read in, the most recent message
    first, each with the user's read state."""
    user = await signed_in_user(request)
    rooms = await request.app[membership_key].rooms_of(user)
    return web.json_response({"rooms": [
        {"room": summary.info.room, "private": summary.info.private, "title": summary.info.title,
         "role": summary.role, "seq": summary.seq, "last_read": summary.read.last_read,
         "unread": summary.read.unread} for summary in rooms]})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 while this instance should get traffic; 503 while draining or while Redis is away."""
    if request.app[draining_key].is_set():
        return web.json_response({"status": "draining"}, status=503)
    ready = await request.app[store_key].ping()
    return web.json_response({"status": "ready" if ready else "unavailable"}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus exposition; the store is pinged first, for `chat_store_up`."""
    registry = request.app[metrics_key]
    registry.store_up.set(1 if await request.app[store_key].ping() else 0)
    return web.Response(body=registry.render(), content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application) -> None:
    """Register the API (but the backend's, `backend_api`), health and metrics routes."""
    app.router.add_post("/api/session", create_session)
    app.router.add_post("/api/session/renew", renew_session)
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_post("/api/rooms", create_room)
    app.router.add_get("/api/rooms/{room}/messages", room_history)
    app.router.add_post("/api/rooms/{room}/messages", publish_message)
    app.router.add_get("/api/me/rooms", my_rooms)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


