"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

import asyncio

import socketio
from aiohttp import web

from .auth import TokenIssuer
from .config import Settings
from .metrics import Metrics
from .service import ChatService
from .stores.base import Store

settings_key = web.AppKey("settings", Settings)
store_key = web.AppKey("store", Store)
service_key = web.AppKey("service", ChatService)
tokens_key = web.AppKey("tokens", TokenIssuer)
metrics_key = web.AppKey("metrics", Metrics)
sio_key = web.AppKey("sio", socketio.AsyncServer)
draining_key = web.AppKey("draining", asyncio.Event)  # set from SIGTERM on: /readyz answers 503
