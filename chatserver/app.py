"""create_app: one aiohttp application with its Socket.IO server, store and service."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import socketio
from aiohttp import web
from aiohttp.typedefs import Middleware

from .api import add_routes, api_errors
from .auth import TokenIssuer, TokenVerifier
from .backend_api import add_backend_routes
from .backplane.channels import Channels
from .backplane.clients import connect
from .backplane.topology import Topology
from .config import Settings
from .editing import MessageEditing
from .keys import (
    draining_key,
    editing_key,
    membership_key,
    metrics_key,
    moderation_key,
    service_key,
    sessions_key,
    settings_key,
    sio_key,
    store_key,
    tokens_key,
    verifier_key,
)
from .keyset import KeySet
from .membership import Membership
from .metrics import Metrics
from .moderation import Moderation
from .namespace import ChatNamespace
from .origins import OriginPolicy, api_cross_origin
from .pages import add_pages, security_headers
from .proxies import forwarded_for
from .reading import ReadMarks
from .service import STORED_EVENTS, ChatService
from .sessions import Sessions
from .stores.base import Store
from .stores.memory import MemoryStore
from .stores.redis import RedisStore, instance_id
from .stores.redis_hooks import RedisHookQueue
from .stores.redis_keys import Keys
from .transport import ChatManager, ChatRedisManager, ChatSocketServer, SocketIOFanout, SocketIOPublisher
from .webhooks.delivery import DeliveryStats, Receiver, WebhookDelivery
from .webhooks.memory_queue import MemoryHookQueue
from .webhooks.queue import HookQueue

log = logging.getLogger(__name__)
REDIS_PREFIX = "chat:"  # of every key and channel the instances share in Redis
SOCKETIO_PATH = "/socket.io/"
# A connection's events that may overlap: each takes its place in the store's line at once
# (see `ChatSocketServer`); the ones after them must wait.
PIPELINED_EVENTS = ("message", "edit", "delete", "react")
HOOK_LEASE_GRACE = 3.0  # seconds past an attempt's timeout before another instance looks at its room


def create_app(settings: Settings) -> web.Application:
    """A ready-to-run application configured by `settings`."""
    secret_key = settings.secret_key
    if secret_key is None:
        log.warning("SECRET_KEY is not set: using a random one; tokens die with this process")
        secret_key = secrets.token_urlsafe(32)
    metrics = Metrics()
    tokens = TokenIssuer(secret_key, settings.token_lifetime, issuer=settings.jwt_issuer,
                         audience=settings.jwt_audience)
    keys = KeySet(settings.jwt_jwks_url, settings.jwt_issuer) if settings.jwt_jwks_url else None
    verifier = TokenVerifier(tokens, keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    topology = settings.topology
    store, manager, hooks = _shared_state(settings, topology)
    origins = OriginPolicy(settings.cors_origins)
    sio = ChatSocketServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=origins.for_engineio,
        transports=list(settings.transports),
        max_http_buffer_size=settings.max_frame_bytes,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        connect_timeout=settings.connect_timeout,
        # One connection's events run in order (a user's messages keep their order);
        # connections still run concurrently with each other.
        async_handlers=False,
        # Where the append script fixes their order before anything is awaited, a
        # connection's messages may overlap (see `Traits.pipelined`).
        pipelined_events=PIPELINED_EVENTS if topology.traits.pipelined else (),
        logger=False,
        engineio_logger=False,
        max_backlog=settings.max_backlog,
        max_backlog_bytes=settings.max_backlog_bytes,
        max_connections_per_address=settings.max_connections_per_address,
    )
    fanout = SocketIOFanout(sio, metrics)
    service = ChatService(store, fanout, settings)
    sessions = Sessions(store, fanout, refresh_notice=settings.token_refresh_notice)
    membership = Membership(store, fanout)
    moderation = Moderation(store, membership, fanout, hooks=hooks)
    editing = MessageEditing(store, service, fanout, settings)
    reads = ReadMarks(store, service, fanout)
    sio.register_namespace(ChatNamespace(service, sessions, moderation=moderation, editing=editing, reads=reads,
                                         tokens=verifier, metrics=metrics))
    draining = asyncio.Event()
    metrics.track(connections=lambda: service.connection_count, rooms=lambda: service.room_count,
                  draining=draining.is_set, deliveries=lambda: sio.eio.deliveries)

    middlewares: list[Middleware] = [api_cross_origin(origins), api_errors]
    if settings.trusted_proxies:
        middlewares.insert(0, forwarded_for(settings.trusted_proxies))
    app = web.Application(client_max_size=settings.max_frame_bytes, middlewares=middlewares)
    app[settings_key] = settings
    app[store_key] = store
    app[service_key] = service
    app[editing_key] = editing
    app[tokens_key] = tokens
    app[verifier_key] = verifier
    app[sessions_key] = sessions
    app[membership_key] = membership
    app[moderation_key] = moderation
    app[metrics_key] = metrics
    app[sio_key] = sio
    app[draining_key] = draining
    app.on_response_prepare.append(security_headers)
    sio.attach(app, socketio_path=SOCKETIO_PATH.strip("/"))
    add_routes(app)
    add_backend_routes(app)
    add_pages(app)
    if keys is not None:
        app.cleanup_ctx.append(functools.partial(_key_set, keys))
    if hooks is not None and settings.webhook_url and settings.webhook_secret:
        receiver = Receiver(settings.webhook_url, settings.webhook_secret, settings.webhook_timeout,
                            settings.webhook_retry_hours * 3600)
        delivery = WebhookDelivery(hooks, receiver)
        shown = urlsplit(settings.webhook_url)  # without credentials or query, which may hold secrets
        log.info("webhooks on", extra={"receiver": f"{shown.scheme}://{shown.netloc.rpartition('@')[2]}{shown.path}"})
        metrics.track_webhooks(delivery.stats)
        app.cleanup_ctx.append(functools.partial(_webhooks, delivery))
    else:
        metrics.track_webhooks(DeliveryStats())  # zeros, so that one dashboard fits every instance
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_send_clients_elsewhere)
    return app


async def _send_clients_elsewhere(app: web.Application) -> None:
    """On shutdown (the listener is already closed): close every Engine.IO connection.
    Clients see a transport close, not a server disconnect, so they reconnect at once,
    through the balancer, to another instance, and catch up there with `since`."""
    closed = await app[sio_key].eio.close_all()
    if closed:
        log.info("shutdown: connections closed so their clients reconnect elsewhere", extra={"closed": closed})


def _shared_state(settings: Settings, topology: Topology) -> tuple[Store, socketio.AsyncManager, HookQueue | None]:
    """The embedded store and in-process fan-out; or Redis for both, the store publishing
    the room events it stores through the manager's pub/sub. With `WEBHOOK_URL`, also
    the queue where the store records webhook events, beside the same state."""
    webhooks = settings.webhook_url is not None
    if not topology.traits.shared or topology.url is None:
        memory_hooks = MemoryHookQueue(settings.webhook_max_queue) if webhooks else None
        return MemoryStore(hooks=memory_hooks), ChatManager(), memory_hooks
    instance = instance_id()
    log.info("shared mode", extra={"instance": instance, "kind": topology.kind, "redis": _redacted(topology.url)})
    manager = ChatRedisManager(topology, channels=Channels(REDIS_PREFIX), ordered_events=STORED_EVENTS,
                               channel_linger=settings.channel_linger, sharded=settings.sharded_pubsub == "auto")
    redis = connect(topology)
    redis_hooks = RedisHookQueue(redis, Keys(REDIS_PREFIX), instance, max_events=settings.webhook_max_queue,
                                 lease=settings.webhook_timeout + HOOK_LEASE_GRACE,
                                 expiry=settings.presence_expiry) if webhooks else None
    store = RedisStore(redis, topology, instance=instance, prefix=REDIS_PREFIX, publisher=SocketIOPublisher(manager),
                       hooks=redis_hooks)
    return store, manager, redis_hooks


def _redacted(url: str) -> str:
    """The Redis URL without its password, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{hosts}"))


async def _key_set(keys: KeySet, app: web.Application) -> AsyncIterator[None]:
    """The identity provider's keys, fetched before the first connection is served."""
    await keys.start()
    yield
    await keys.close()


async def _webhooks(delivery: WebhookDelivery, app: web.Application) -> AsyncIterator[None]:
    """Webhook delivery while the app runs."""
    await delivery.start()
    yield
    await delivery.close()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Presence upkeep while the app runs; on the way out, say goodbye, then close the store."""
    settings, service = app[settings_key], app[service_key]
    app[sio_key].start_manager()
    upkeep = asyncio.create_task(service.keep_presence(settings.presence_heartbeat, settings.presence_expiry))
    yield
    upkeep.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await upkeep
    await service.close()
    await app[store_key].close()
