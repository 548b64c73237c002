"""Reaching a user (contract v2): `notify` from the backend to every connection of one user,
and `POST /api/users/{id}/disconnect`, with `revoke` refusing the user's older tokens."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt
import pytest

from tests.chat_client import ChatClient, new_room
from tests.conftest import API_KEY, SECRET_KEY
from tests.functional.test_app_identity import connect


def token(sub: str, *, iat: float | None = None) -> str:
    claims: dict[str, Any] = {"sub": sub, "exp": int(time.time()) + 600}
    if iat is not None:
        claims["iat"] = int(iat)
    return jwt.encode(claims, SECRET_KEY, algorithm="HS256")


async def backend(url: str, path: str, body: Any = None, *, key: str = API_KEY) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(
            f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}) as response:
        return response.status, await response.json()


async def connected(url: str, sub: str) -> ChatClient:
    client = ChatClient(url, token(sub, iat=time.time()), {"id": sub, "name": sub})
    await client.connect()
    return client


async def test_notify_reaches_every_connection_of_the_user_and_nobody_else(server_url: str):
    phone, laptop = await connected(server_url, "notified"), await connected(server_url, "notified")
    other = await connected(server_url, "bystander")
    status, answer = await backend(server_url, "/api/users/notified/events", {"data": {"badge": 3, "text": "hi"}})
    assert status == 202, answer
    for client in (phone, laptop):
        await client.wait_for("notify", lambda got: got == [{"data": {"badge": 3, "text": "hi"}}])
    await asyncio.sleep(0.3)
    assert other.received["notify"] == []
    for client in (phone, laptop, other):
        await client.close()


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/api/users/u1/events", {"data": "not an object"}, 400, "invalid_payload"),
    ("/api/users/u1/events", {}, 400, "invalid_payload"),
    ("/api/users/u1/events", ["data"], 400, "invalid_payload"),
    ("/api/users/u1/events", {"data": {"blob": "x" * 70_000}}, 413, "too_large"),
    ("/api/users/" + "u" * 65 + "/events", {"data": {}}, 400, "invalid_payload"),
    ("/api/users/u1/disconnect", {"revoke": "yes"}, 400, "invalid_payload"),
])
async def test_backend_user_routes_validate_their_input(server_url: str, path: str, body: Any, status: int,
                                                       code: str):
    answer_status, answer = await backend(server_url, path, body)
    assert (answer_status, answer["error"]["code"]) == (status, code), answer


@pytest.mark.parametrize("path", ["/api/users/u1/events", "/api/users/u1/disconnect"])
async def test_backend_user_routes_need_the_api_key(server_url: str, path: str):
    status, answer = await backend(server_url, path, {"data": {}}, key="not-the-key-at-all")
    assert (status, answer["error"]["code"]) == (401, "unauthorized")


async def test_disconnect_closes_every_connection_and_the_room_sees_them_leave(server_url: str):
    room = new_room("ended")
    ended, ended_too = await connected(server_url, "ended"), await connected(server_url, "ended")
    watcher = await connected(server_url, "watcher")
    for client in (ended, ended_too, watcher):
        await client.join(room)
    status, _ = await backend(server_url, "/api/users/ended/disconnect")
    assert status == 202
    for client in (ended, ended_too):
        await client.wait_for("disconnected", lambda got: got == [{"reason": "disconnected"}])
        await client.wait_for("disconnect", lambda got: len(got) == 1)
    await watcher.wait_for("presence", lambda got: {"room": room, "user": {"id": "ended", "name": "ended"},
                                                     "status": "left"} in got)
    again, refusal = await connect(server_url, ended.token)  # without revoke, the token still works
    assert again is not None, refusal
    await again.disconnect()
    await watcher.close()


async def test_revoke_refuses_older_tokens_at_connect_and_at_refresh(server_url: str):
    victim = await connected(server_url, "revoked-user")
    spare = await connected(server_url, "revoked-user")
    spare_token = spare.token
    await spare.close()
    status, answer = await backend(server_url, "/api/users/revoked-user/disconnect", {"revoke": True})
    assert status == 202, answer
    revoked_by = time.time()
    await victim.wait_for("disconnected", lambda got: got == [{"reason": "revoked"}])
    await victim.wait_for("disconnect", lambda got: len(got) == 1)
    for old in (victim.token, spare_token, token("revoked-user")):  # issued before, or without `iat`
        client, refusal = await connect(server_url, old)
        assert client is None and refusal is not None and refusal["data"]["code"] == "unauthorized", refusal
    await asyncio.sleep(max(0.0, int(revoked_by) + 1.05 - time.time()))  # `iat` counts whole seconds
    fresh = await connected(server_url, "revoked-user")  # a token issued after the revocation
    ack = await fresh.call("refresh", {"token": spare_token})
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized"
    await fresh.close()


async def test_revoke_also_refuses_renewing_an_older_token(server_url: str):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server_url}/api/session", json={"name": "Renewer"}) as response:
            session = await response.json()
        status, _ = await backend(server_url, f"/api/users/{session['user']['id']}/disconnect", {"revoke": True})
        assert status == 202
        async with http.post(f"{server_url}/api/session/renew",
                             headers={"Authorization": f"Bearer {session['token']}"}) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthorized"
