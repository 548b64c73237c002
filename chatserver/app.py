"""create_app: one aiohttp application with its Socket.IO server, store and service."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from .api import add_routes, api_errors
from .auth import TokenIssuer
from .config import Settings
from .fanout import SocketIOFanout
from .keys import metrics_key, service_key, settings_key, sio_key, store_key, tokens_key
from .metrics import Metrics
from .namespace import ChatNamespace
from .origins import OriginPolicy
from .pages import add_pages, security_headers
from .service import ChatService
from .stores.base import Store
from .stores.memory import MemoryStore

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """A ready-to-run application configured by `settings`."""
    secret_key = settings.secret_key
    if secret_key is None:
        log.warning("SECRET_KEY is not set: using a random one; tokens die with this process")
        secret_key = secrets.token_urlsafe(32)
    metrics = Metrics()
    tokens = TokenIssuer(secret_key, settings.token_lifetime)
    store: Store = MemoryStore()
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=OriginPolicy(settings.cors_origins).for_engineio,
        transports=list(settings.transports),
        max_http_buffer_size=settings.max_frame_bytes,
        # One connection's events run in order (a user's messages keep their order);
        # connections still run concurrently with each other.
        async_handlers=False,
        logger=False,
        engineio_logger=False,
    )
    service = ChatService(store, SocketIOFanout(sio, metrics), settings)
    sio.register_namespace(ChatNamespace(service, tokens, metrics))
    metrics.track(connections=lambda: service.connection_count, rooms=lambda: service.room_count)

    app = web.Application(client_max_size=settings.max_frame_bytes, middlewares=[security_headers, api_errors])
    app[settings_key] = settings
    app[store_key] = store
    app[service_key] = service
    app[tokens_key] = tokens
    app[metrics_key] = metrics
    app[sio_key] = sio
    sio.attach(app, socketio_path="socket.io")
    add_routes(app)
    add_pages(app)
    app.cleanup_ctx.append(_store_lifecycle)
    return app


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[store_key].close()
