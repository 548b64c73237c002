"""Identity: sessions over HTTP, and tokens checked at connect."""

from __future__ import annotations

import time

import aiohttp
import jwt
import pytest
import socketio

from tests.chat_client import NAMESPACE
from tests.conftest import SECRET_KEY


async def post_session(url: str, body: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(f"{url}/api/session", json=body) as resp:
        return resp.status, await resp.json()


async def test_session_issues_a_token_for_the_trimmed_name(server_url):
    status, body = await post_session(server_url, {"name": "  Ana  "})
    assert status == 200
    assert body["user"]["name"] == "Ana"
    claims = jwt.decode(body["token"], SECRET_KEY, algorithms=["HS256"])
    assert claims["sub"] == body["user"]["id"]
    assert claims["name"] == "Ana"
    assert 6.9 * 86400 < claims["exp"] - time.time() <= 7 * 86400


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "   "}, {"name": "x" * 33}, {"name": "a\nb"},
                                  {"name": "bell\x07"}, {"name": 5}, {}, {"name": None}, {"name": "a\ud800"}])
async def test_bad_names_are_refused_with_invalid_name(server_url, body):
    status, answer = await post_session(server_url, body)
    assert status == 400
    assert answer["error"]["code"] == "invalid_name"


async def test_a_body_that_is_not_json_is_invalid_payload(server_url):
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http, \
            http.post(f"{server_url}/api/session", data=b"{not json", headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_payload"


def forged(**claims: object) -> str:
    base = {"sub": "u1", "name": "Mallory", "exp": int(time.time()) + 3600}
    return jwt.encode({**base, **claims}, SECRET_KEY, algorithm="HS256")


UNSIGNED = jwt.encode({"sub": "u1", "name": "M", "exp": int(time.time()) + 3600}, None, algorithm="none")


@pytest.mark.parametrize("auth", [
    None,
    {},
    {"token": ""},
    {"token": 42},
    {"token": "not-a-jwt"},
    {"token": jwt.encode({"sub": "u1", "name": "M", "exp": int(time.time()) + 3600},
                         "another-secret-key-of-sufficient-length", algorithm="HS256")},
    {"token": forged(exp=int(time.time()) - 10)},
    {"token": UNSIGNED},
    {"token": forged(name="")},
], ids=["no-auth", "empty-auth", "empty-token", "number", "garbage", "wrong-key", "expired", "alg-none",
        "empty-name"])
async def test_connect_refuses_bad_tokens_with_unauthorized(server_url, auth):
    client = socketio.AsyncClient(reconnection=False)
    errors: list[object] = []
    client.on("connect_error", errors.append, namespace=NAMESPACE)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server_url, namespaces=[NAMESPACE], auth=auth, transports=["websocket"], wait_timeout=5)
    await client.disconnect()
    assert errors, "no connect_error was delivered"
    assert errors[0]["data"]["code"] == "unauthorized"
    assert errors[0]["data"]["message"]


async def test_a_token_minted_by_a_backend_with_the_secret_is_accepted(make_client):
    client = await make_client(session={"token": forged(sub="backend-user-7", name="Bot"),
                                        "user": {"id": "backend-user-7", "name": "Bot"}})
    ack = await client.join("lobby-minted")
    assert ack["members"] == [{"id": "backend-user-7", "name": "Bot"}]


async def renew(url: str, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as http, http.post(f"{url}/api/session/renew", headers=headers) as resp:
        return resp.status, await resp.json()


async def test_an_expired_token_is_renewed_for_the_same_user(server_url, make_client):
    """A user back after a week keeps their id, and so their own messages."""
    expired = forged(sub="u-back", name="Ana", exp=int(time.time()) - 3 * 86400)
    status, body = await renew(server_url, expired)
    assert status == 200 and body["user"] == {"id": "u-back", "name": "Ana"}
    claims = jwt.decode(body["token"], SECRET_KEY, algorithms=["HS256"])
    assert claims["sub"] == "u-back" and 6.9 * 86400 < claims["exp"] - time.time() <= 7 * 86400
    ana = await make_client(session=body)  # the new token opens connections as that user
    assert (await ana.call("join", {"room": "renewed"}))["members"] == [{"id": "u-back", "name": "Ana"}]


@pytest.mark.parametrize("token", [
    None,
    "not-a-jwt",
    forged(exp=int(time.time()) - 8 * 86400),  # expired longer ago than a lifetime
    jwt.encode({"sub": "u1", "name": "M", "exp": int(time.time()) - 10},
               "another-secret-key-of-sufficient-length", algorithm="HS256"),
    UNSIGNED,
], ids=["none", "garbage", "expired-too-long-ago", "wrong-key", "alg-none"])
async def test_renewing_refuses_tokens_we_did_not_sign_or_that_expired_long_ago(server_url, token):
    status, body = await renew(server_url, token)
    assert status == 401 and body["error"]["code"] == "unauthorized"
