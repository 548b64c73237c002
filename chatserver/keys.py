"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

import asyncio

import socketio
from aiohttp import web

from .auth import TokenIssuer, TokenVerifier
from .config import Settings
from .editing import MessageEditing
from .membership import Membership
from .metrics import Metrics
from .moderation import Moderation
from .service import ChatService
from .sessions import Sessions
from .stores.base import Store

settings_key = web.AppKey("settings", Settings)
store_key = web.AppKey("store", Store)
service_key = web.AppKey("service", ChatService)
editing_key = web.AppKey("editing", MessageEditing)
tokens_key = web.AppKey("tokens", TokenIssuer)  # our own: anonymous sessions and their renewal
verifier_key = web.AppKey("verifier", TokenVerifier)  # every token a client may present
sessions_key = web.AppKey("sessions", Sessions)
membership_key = web.AppKey("membership", Membership)
moderation_key = web.AppKey("moderation", Moderation)
metrics_key = web.AppKey("metrics", Metrics)
sio_key = web.AppKey("sio", socketio.AsyncServer)
draining_key = web.AppKey("draining", asyncio.Event)  # set from SIGTERM on: /readyz answers 503
