"""Sessions: what holds between a user's token and their connections, whatever room they
are in. Tokens expire and are refreshed while connected; the app's backend reaches every
connection of a user, on every instance, to notify it or to end it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from .errors import Forbidden, Unauthorized
from .expiry import TokenExpiry
from .models import Credentials
from .stores.base import UserStore
from .tasks import Background

log = logging.getLogger(__name__)

# (user id, event, its payload, the user's connections on this instance it reached)
UserEventHandler = Callable[[str, str, object, list[str]], None]


class UserFanout(Protocol):
    """Delivery to one connection, or to every connection of a user on every instance."""

    async def enter_user(self, conn: str, user_id: str) -> None:
        """Put a local connection where the events addressed to its user reach it."""
        ...

    async def to_user(self, event: str, payload: Mapping[str, object], user_id: str) -> None:
        """Deliver `event` to every connection of the user, on every instance."""
        ...

    async def to_connection(self, event: str, payload: Mapping[str, object], conn: str) -> None:
        """Deliver `event` to one connection of this instance."""
        ...

    async def close(self, conn: str) -> None:
        """Disconnect one connection of this instance."""
        ...

    def hear_users(self, handler: UserEventHandler) -> None:
        """Call `handler(user_id, event, payload, conns)` after each user event was
        delivered to `conns`, the user's connections on this instance."""
        ...


class Sessions:
    """Token expiry and refresh per connection; notices and disconnects per user."""

    def __init__(self, store: UserStore, fanout: UserFanout, *, refresh_notice: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._fanout = fanout
        self._clock = clock
        self._expiry = TokenExpiry(refresh_notice, self._expiring, self._expired, clock)
        self._background = Background("session work")
        self._opening: set[str] = set()  # connections whose connect handler is still running
        self._ended_while_opening: set[str] = set()  # ... and that their user's `disconnected` reached
        fanout.hear_users(self._heard)

    async def open(self, conn: str, credentials: Credentials, is_open: Callable[[], bool]) -> None:
        """Start the session of a new connection: it hears its user's events, then its
        token is checked against revocation (so a revocation meanwhile reaches it either
        way) and timed. Refused (`unauthorized`) if the token was revoked, or the backend
        ended the user's connections while this one was opening. `is_open()` tells
        whether the connection is still there after a wait."""
        self._opening.add(conn)
        try:
            await self._fanout.enter_user(conn, credentials.user.id)
            await self.refuse_revoked(credentials)
            if conn in self._ended_while_opening:
                raise Unauthorized("the app ended this user's connections: sign in again")
        finally:
            self._opening.discard(conn)
            self._ended_while_opening.discard(conn)
        if is_open():
            self._expiry.watch(conn, credentials.expires_at)

    def close(self, conn: str) -> None:
        """The connection is gone: stop timing its token."""
        self._expiry.forget(conn)

    async def refresh(self, conn: str, user_id: str, credentials: Credentials) -> float:
        """A new token for a live connection of `user_id`: the same user only (`forbidden`),
        not revoked (`unauthorized`). Its expiry (Unix seconds) replaces the old one."""
        if credentials.user.id != user_id:
            raise Forbidden("a token of another user cannot refresh this connection")
        await self.refuse_revoked(credentials)
        if not self._expiry.renew(conn, credentials.expires_at):
            raise Unauthorized("this connection is closing")
        return credentials.expires_at

    async def notify(self, user_id: str, data: Mapping[str, object]) -> None:
        """Deliver the app's `data` to every connection of the user, as `notify`."""
        await self._fanout.to_user("notify", {"data": data}, user_id)

    async def disconnect_user(self, user_id: str, *, revoke: bool) -> None:
        """Close every connection of the user, on every instance, after telling each why;
        with `revoke`, the user's tokens issued before now are refused from now on."""
        if revoke:
            await self._store.revoke(user_id, int(self._clock() * 1000))
        await self._fanout.to_user("disconnected", {"reason": "revoked" if revoke else "disconnected"}, user_id)
        log.info("user disconnected by the backend", extra={"user": user_id, "revoke": revoke})

    async def refuse_revoked(self, credentials: Credentials) -> None:
        """`unauthorized` for a token issued before its user's revocation."""
        line = await self._store.revoked_before(credentials.user.id)
        if line is not None and (credentials.issued_at is None or credentials.issued_at * 1000 < line):
            raise Unauthorized("token revoked: sign in again")

    def _heard(self, user_id: str, event: str, payload: object, conns: list[str]) -> None:
        if event == "disconnected":
            for conn in conns:
                if conn in self._opening:  # not connected yet: its connect handler refuses it
                    self._ended_while_opening.add(conn)
                else:
                    self._background.start(self._fanout.close(conn))

    def _expiring(self, conn: str, expires_at: float) -> None:
        notice = {"expires_at": int(expires_at * 1000)}
        self._background.start(self._fanout.to_connection("token_expiring", notice, conn))

    def _expired(self, conn: str) -> None:
        self._background.start(self._end_expired(conn))

    async def _end_expired(self, conn: str) -> None:
        await self._fanout.to_connection("token_expired", {}, conn)
        await self._fanout.close(conn)
        log.info("token expired: connection closed", extra={"conn": conn})
