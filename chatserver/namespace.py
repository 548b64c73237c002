"""The `/chat` Socket.IO namespace: validate the payload, call the service, shape the ack."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import socketio
from pydantic import BaseModel

from .auth import TokenVerifier
from .editing import MessageEditing
from .errors import ChatError, Internal, InvalidPayload, Unauthorized
from .metrics import Metrics
from .models import (
    BanPayload,
    DeletePayload,
    EditPayload,
    HistoryPayload,
    JoinPayload,
    LeavePayload,
    MembersPayload,
    MessagePayload,
    ModerationPayload,
    MutePayload,
    Position,
    ReactPayload,
    ReadPayload,
    RefreshPayload,
    TypingPayload,
    parse,
)
from .moderation import Action, Moderation
from .reading import ReadMarks
from .service import ChatService
from .sessions import Sessions
from .transport import NAMESPACE, ReservedEvent

log = logging.getLogger(__name__)

Ack = dict[str, Any]


class ChatNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Client events of the wire contract. Every event answers one ack object;
    nothing a client sends can raise out of here or reach other users unvalidated."""

    def __init__(self, service: ChatService, sessions: Sessions, *, moderation: Moderation, editing: MessageEditing,
                 reads: ReadMarks, tokens: TokenVerifier, metrics: Metrics) -> None:
        super().__init__(NAMESPACE)
        self._service = service
        self._sessions = sessions
        self._moderation = moderation
        self._editing = editing
        self._reads = reads
        self._tokens = tokens
        self._metrics = metrics
        self._events: dict[str, tuple[type[BaseModel], Callable[[str, Any], Awaitable[Ack]]]] = {
            "join": (JoinPayload, self._join),
            "leave": (LeavePayload, self._leave),
            "message": (MessagePayload, self._message),
            "typing": (TypingPayload, self._typing),
            "history": (HistoryPayload, self._history),
            "members": (MembersPayload, self._members),
            "refresh": (RefreshPayload, self._refresh),
            "kick": (ModerationPayload, functools.partial(self._moderate, "kick")),
            "ban": (BanPayload, functools.partial(self._moderate, "ban")),
            "unban": (ModerationPayload, functools.partial(self._moderate, "unban")),
            "mute": (MutePayload, functools.partial(self._moderate, "mute")),
            "unmute": (ModerationPayload, functools.partial(self._moderate, "unmute")),
            "edit": (EditPayload, self._edit),
            "delete": (DeletePayload, self._delete),
            "react": (ReactPayload, self._react),
            "read": (ReadPayload, self._read),
        }

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        """Dispatch one event; connect and disconnect come here too."""
        if event == "connect":
            return await self._connect(args[0], args[2] if len(args) > 2 else None)
        if event == "disconnect":
            return await self._disconnect(args[0])
        if not args:
            return None
        sid, payload = args[0], args[1:]
        return await self._handle(sid, event, payload)

    async def _connect(self, sid: str, auth: Any) -> bool:
        """Admit a connection with a valid, unrevoked token; refuse it with the error's
        code in `connect_error` otherwise (`internal` while the store is away)."""
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            credentials = await self._tokens.verify(token)
            self._service.connect(sid, credentials.user)
            await self._sessions.open(sid, credentials, lambda: self._still_there(sid))
            if not self._still_there(sid):
                raise Unauthorized("the client left while connecting")
        except ChatError as error:
            await self._refuse(sid, error)
        except Exception:
            log.exception("connect failed", extra={"sid": sid})
            await self._refuse(sid, Internal("internal error, please retry"))
        self._metrics.connects.labels("accepted").inc()
        log.debug("connect", extra={"sid": sid, "user": credentials.user.id})
        return True

    async def _refuse(self, sid: str, error: ChatError) -> NoReturn:
        """Forget what the refused connection had set up, and refuse it."""
        self._sessions.close(sid)
        await self._service.disconnect(sid)
        self._metrics.errors.labels(error.code).inc()
        self._metrics.connects.labels("refused").inc()
        log.info("connect refused", extra={"sid": sid, "reason": error.message})
        raise socketio.exceptions.ConnectionRefusedError(error.message, error.as_dict())

    def _still_there(self, sid: str) -> bool:
        """Whether the connection's Engine.IO session is open: python-socketio tells no
        disconnect handler of a client that left while its connect handler ran."""
        eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
        return eio_sid is not None and eio_sid in self.server.eio.sockets

    async def _disconnect(self, sid: str) -> None:
        self._sessions.close(sid)
        try:
            await self._service.disconnect(sid)
        except ChatError as error:  # Redis away: presence expires with this instance's heartbeat
            log.warning("disconnect cleanup failed", extra={"sid": sid, "error": error.message})
        except Exception:
            log.exception("disconnect cleanup failed", extra={"sid": sid})
        self._metrics.disconnects.inc()
        log.debug("disconnect", extra={"sid": sid})

    async def _handle(self, sid: str, event: Any, args: tuple[Any, ...]) -> Ack:
        started = time.perf_counter()
        name = event if isinstance(event, str) and event in self._events else "unknown"
        try:
            if isinstance(event, ReservedEvent):
                raise InvalidPayload(f"{event.name!r} is a reserved event name")
            if name == "unknown":
                raise InvalidPayload("unknown event")
            if len(args) != 1 or not isinstance(args[0], dict):
                raise InvalidPayload("the payload must be one JSON object")
            model, handler = self._events[name]
            return await handler(sid, parse(model, args[0]))
        except ChatError as error:
            return self._failure(error)
        except Exception:
            log.exception("event failed", extra={"event": name, "sid": sid})
            return self._failure(Internal("internal error, please retry"))
        finally:
            self._metrics.event_seconds.labels(name).observe(time.perf_counter() - started)

    def _failure(self, error: ChatError) -> Ack:
        self._metrics.errors.labels(error.code).inc()
        return {"ok": False, "error": error.as_dict()}

    async def _join(self, sid: str, payload: JoinPayload) -> Ack:
        since = Position(payload.since.seq, payload.since.epoch, payload.since.rev) if payload.since else None
        joined = await self._service.join(sid, payload.room, since, payload.invite)
        recovery = joined.recovery
        ack = {"ok": True, "room": joined.room, "epoch": recovery.epoch, "seq": recovery.seq, "rev": recovery.rev,
               "messages": recovery.messages, "recovered": recovery.recovered,
               "members": [online.as_dict() for online in joined.members], "role": joined.role,
               "last_read": recovery.read.last_read, "unread": recovery.read.unread}
        if since is not None and since.rev is not None:  # a client that tracks changes
            ack["updated"] = recovery.updated or []
        return ack

    async def _leave(self, sid: str, payload: LeavePayload) -> Ack:
        await self._service.leave(sid, payload.room)
        return {"ok": True}

    async def _message(self, sid: str, payload: MessagePayload) -> Ack:
        message = await self._service.send(sid, payload.room, payload.text, payload.client_id, payload.reply_to)
        self._metrics.messages_in.inc()
        return {"ok": True, "message": message}

    async def _edit(self, sid: str, payload: EditPayload) -> Ack:
        return {"ok": True, "message": await self._editing.edit(sid, payload.room, payload.seq, payload.text)}

    async def _delete(self, sid: str, payload: DeletePayload) -> Ack:
        return {"ok": True, "message": await self._editing.delete(sid, payload.room, payload.seq)}

    async def _react(self, sid: str, payload: ReactPayload) -> Ack:
        message = await self._editing.react(sid, payload.room, payload.seq, payload.emoji, payload.on)
        return {"ok": True, "message": message}

    async def _read(self, sid: str, payload: ReadPayload) -> Ack:
        return {"ok": True, "last_read": await self._reads.read(sid, payload.room, payload.seq)}

    async def _typing(self, sid: str, payload: TypingPayload) -> Ack:
        await self._service.typing(sid, payload.room, payload.typing)
        return {"ok": True}

    async def _history(self, sid: str, payload: HistoryPayload) -> Ack:
        page = await self._service.history(self._service.user_of(sid), payload.room,
                                           payload.before_seq, payload.limit)
        return {"ok": True, "messages": page.messages, "has_more": page.has_more}

    async def _refresh(self, sid: str, payload: RefreshPayload) -> Ack:
        credentials = await self._tokens.verify(payload.token)
        expires_at = await self._sessions.refresh(sid, self._service.user_of(sid).id, credentials)
        return {"ok": True, "expires_at": int(expires_at * 1000)}

    async def _moderate(self, action: Action, sid: str, payload: ModerationPayload) -> Ack:
        seconds = payload.seconds if isinstance(payload, BanPayload | MutePayload) else None
        announced = await self._moderation.act(self._service.user_of(sid), payload.room, action, payload.user_id,
                                               seconds, payload.reason)
        return {"ok": True, "moderation": announced}

    async def _members(self, sid: str, payload: MembersPayload) -> Ack:
        members = await self._service.members(self._service.user_of(sid), payload.room)
        return {"ok": True, "members": [online.as_dict() for online in members]}
