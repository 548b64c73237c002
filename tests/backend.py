"""The app's backend, as the tests play it: routes with the API key, and tokens minted with
the shared secret."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import jwt

from tests.chat_client import ChatClient
from tests.conftest import API_KEY, SECRET_KEY


def minted(sub: str, name: str | None = None, *, lifetime: float = 600) -> str:
    now = time.time()
    return jwt.encode({"sub": sub, "name": name or sub, "iat": int(now), "exp": int(now + lifetime)}, SECRET_KEY,
                      algorithm="HS256")


async def call(url: str, method: str, path: str, body: Any = None, *, key: str = API_KEY) -> tuple[int, Any]:
    """`method path` on the server at `url` with the API key; (status, JSON body or None)."""
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}) as response:
        answer = await response.json() if response.content_type == "application/json" else None
        return response.status, answer


async def signed_in(url: str, sub: str, name: str | None = None) -> ChatClient:
    """A connected client of the app's user `sub`, recording what it hears."""
    client = ChatClient(url, minted(sub, name), {"id": sub, "name": name or sub})
    await client.connect()
    return client
