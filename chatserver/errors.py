"""Errors of the chat domain, each carrying its wire-contract error code."""

from __future__ import annotations

from typing import Any


class ChatError(Exception):
    """A refusal the client should see: `code` is the contract's error code."""

    code = "internal"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, Any]:
        """The contract's error object: `{"code", "message"}`."""
        return {"code": self.code, "message": self.message}


class InvalidPayload(ChatError):
    code = "invalid_payload"
    http_status = 400


class InvalidRoom(ChatError):
    code = "invalid_room"
    http_status = 400


class InvalidName(ChatError):
    code = "invalid_name"
    http_status = 400


class Unauthorized(ChatError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ChatError):
    code = "forbidden"
    http_status = 403


class NotJoined(ChatError):
    code = "not_joined"
    http_status = 409


class TooLarge(ChatError):
    code = "too_large"
    http_status = 413


class NotFound(ChatError):
    code = "not_found"
    http_status = 404


class Conflict(ChatError):
    code = "conflict"
    http_status = 409


class RateLimited(ChatError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, retry_after: float, what: str = "too many messages") -> None:
        super().__init__(f"{what}, retry in {retry_after:.1f} s")
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "retry_after": self.retry_after}


class Internal(ChatError):
    code = "internal"
    http_status = 500


class StoreUnavailable(Internal):
    """Shared state (Redis) cannot be reached right now; the client may retry."""

    def __init__(self) -> None:
        super().__init__("the server's storage is unavailable, please retry shortly")
