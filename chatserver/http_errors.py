"""A `ChatError` as the contract's HTTP answer, for every layer that answers HTTP itself
(the API, the middlewares, the transport's refusals of a handshake)."""

from __future__ import annotations

from aiohttp import web

from .errors import ChatError


def error_response(error: ChatError) -> web.Response:
    """The contract's HTTP error: `{"error": {"code", "message"}}` with its status."""
    return web.json_response({"error": error.as_dict()}, status=error.http_status)
