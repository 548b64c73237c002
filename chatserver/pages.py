"""HTML pages (aiohttp-jinja2) and the static files they need."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .keys import service_key, settings_key
from .models import INVITE_MAX, is_room_id

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
CLIENT_DIST = WEB_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """A strict CSP on every answer; no referrer, so invite links never leak.

    An `on_response_prepare` signal rather than a middleware: a middleware's coroutine
    frame would live as long as each WebSocket does. A WebSocket's `101` is left as it
    was: the headers mean nothing there, and aiohttp keeps its headers for the
    connection's life."""
    if isinstance(response, web.WebSocketResponse):
        return
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")


async def home(request: web.Request) -> web.Response:
    """The home page; where the app signs its users in (`ANONYMOUS_SESSIONS=off`), it says so."""
    anonymous = request.app[settings_key].anonymous_sessions == "on"
    return aiohttp_jinja2.render_template("home.html", request, {"anonymous_sessions": anonymous})


async def chat_page(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    if not is_room_id(room):
        return _not_found(request, "A room name is 1 to 64 letters, digits, _ or -.")
    return _chat(request, room, None)


async def invite_page(request: web.Request) -> web.Response:
    invite = request.match_info["invite"]
    room = await request.app[service_key].room_for_invite(invite) if len(invite) <= INVITE_MAX else None
    if room is None:
        return _not_found(request, "This invite link is not valid.")
    return _chat(request, room, invite)


def _chat(request: web.Request, room: str, invite: str | None) -> web.Response:
    """The room page; the composer counts towards the server's message length limit."""
    context = {"room": room, "invite": invite, "max_message_length": request.app[settings_key].max_message_length}
    return aiohttp_jinja2.render_template("chat.html", request, context)


async def socketio_client(request: web.Request) -> web.StreamResponse:
    if not CLIENT_DIST.is_file():
        raise web.HTTPServiceUnavailable(text="socket.io-client is not installed: run `npm ci --prefix web`")
    return web.FileResponse(CLIENT_DIST, headers={"Cache-Control": "public, max-age=86400"})


def _not_found(request: web.Request, message: str) -> web.Response:
    return aiohttp_jinja2.render_template("not_found.html", request, {"message": message}, status=404)


def add_pages(app: web.Application) -> None:
    """Set up templates and register the page and static routes."""
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(WEB_DIR / "templates"), autoescape=True)
    if not CLIENT_DIST.is_file():
        log.warning("socket.io-client missing: pages cannot connect; run `npm ci --prefix web`",
                    extra={"path": str(CLIENT_DIST)})
    app.router.add_get("/", home)
    app.router.add_get("/chat/{room}", chat_page)
    app.router.add_get("/invite/{invite}", invite_page)
    app.router.add_get("/static/vendor/socket.io.min.js", socketio_client)
    app.router.add_static("/static/", WEB_DIR / "static")
