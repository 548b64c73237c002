"""A real Socket.IO client of the /chat namespace, recording what the server sends it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp
import socketio

NAMESPACE = "/chat"


def new_room(prefix: str = "room") -> str:
    """A room id no other test uses: `prefix-` and 12 random hex digits."""
    return f"{prefix}-{secrets.token_hex(6)}"


async def new_session(base_url: str, name: str) -> dict[str, Any]:
    """POST /api/session: `{"token", "user"}`."""
    async with aiohttp.ClientSession() as http, http.post(f"{base_url}/api/session", json={"name": name}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


class ChatClient:
    """One connection of one user; `received[event]` lists every payload in arrival order."""

    def __init__(self, base_url: str, token: str, user: dict[str, str], transports: list[str] | None = None):
        self.base_url = base_url
        self.token = token
        self.user = user
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = {
            event: [] for event in ("message", "typing", "presence", "notify", "disconnected", "token_expiring",
                                    "token_expired", "room_added", "removed", "moderation", "disconnect",
                                    "message_updated", "read", "read_receipt")}
        self._changed = asyncio.Event()
        for event in self.received:
            self.sio.on(event, self._recorder(event), namespace=NAMESPACE)

    @property
    def session(self) -> dict[str, Any]:
        """This user's `{"token", "user"}`, to open another connection as the same user."""
        return {"token": self.token, "user": self.user}

    def _recorder(self, event: str) -> Callable[..., Any]:
        async def record(payload: Any = None) -> None:  # `disconnect` gets a reason, the others one object
            self.received[event].append(payload)
            self._changed.set()
        return record

    async def connect(self) -> None:
        await self.sio.connect(self.base_url, namespaces=[NAMESPACE], auth={"token": self.token},
                               transports=self.transports, wait_timeout=5)

    async def call(self, event: str, *args: Any, timeout: float = 5) -> Any:
        """Emit `event` with `args` (none, one, or several) and return the server's ack."""
        data = args[0] if len(args) == 1 else (args or None)
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=timeout)

    async def join(self, room: str, **extra: Any) -> dict[str, Any]:
        ack = await self.call("join", {"room": room, **extra})
        assert ack["ok"], ack
        return ack

    async def send(self, room: str, text: str, **extra: Any) -> dict[str, Any]:
        ack = await self.call("message", {"room": room, "text": text, **extra})
        assert ack["ok"], ack
        return ack["message"]

    async def wait_for(self, event: str, predicate: Callable[[list[Any]], bool], timeout: float = 5) -> list[Any]:
        """Wait until `predicate(received[event])` holds; fail with what was seen after `timeout`."""
        async def satisfied() -> None:
            while not predicate(self.received[event]):
                self._changed.clear()
                await self._changed.wait()
        try:
            await asyncio.wait_for(satisfied(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.user['name']} waited for {event}; got {self.received[event]}") from None
        return self.received[event]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
