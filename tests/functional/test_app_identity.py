"""Identity from the app's own sign-in (contract v2), the HS256 part: the issuer and audience a
deployment names are enforced for every token, the display name comes from the claims the
app's tokens carry, and anonymous sessions can be turned off."""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
import jwt
import pytest
import socketio

from tests.chat_client import NAMESPACE
from tests.conftest import SECRET_KEY, ServerProcess, server_env

ISSUER, AUDIENCE = "https://id.example", "chat"


def minted(**claims: object) -> str:
    """A token as the app's backend mints it with the shared secret."""
    return jwt.encode({"sub": "app-user-1", "exp": int(time.time()) + 600, **claims}, SECRET_KEY, algorithm="HS256")


async def connect(url: str, token: str) -> tuple[socketio.AsyncClient | None, dict | None]:
    """A connected client, or None and the `connect_error` data."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[dict] = []
    client.on("connect_error", errors.append, namespace=NAMESPACE)
    try:
        await client.connect(url, namespaces=[NAMESPACE], auth={"token": token}, transports=["websocket"],
                             wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        await client.disconnect()
        return None, errors[0] if errors else None
    return client, None


async def joined_as(url: str, token: str) -> dict:
    client, refusal = await connect(url, token)
    assert client is not None, refusal
    try:
        ack = await client.call("join", {"room": "identity-lobby"}, namespace=NAMESPACE, timeout=5)
        return next(member for member in ack["members"] if member["id"] == jwt.decode(
            token, options={"verify_signature": False})["sub"])
    finally:
        await client.disconnect()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory):
    server = ServerProcess(env=server_env(JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE),
                           log_path=tmp_path_factory.mktemp("app-identity") / "server.log").start()
    yield server
    server.stop()
    assert "Traceback" not in server.log(), server.log()


async def test_a_token_of_the_configured_issuer_and_audience_connects(app_server: ServerProcess) -> None:
    member = await joined_as(app_server.url, minted(iss=ISSUER, aud=AUDIENCE, name="Ana"))
    assert member == {"id": "app-user-1", "name": "Ana"}


@pytest.mark.parametrize("claims", [{}, {"iss": ISSUER}, {"aud": AUDIENCE}, {"iss": "https://evil.example",
                                                                             "aud": AUDIENCE},
                                    {"iss": ISSUER, "aud": "other-app"}],
                         ids=["neither", "no-audience", "no-issuer", "other-issuer", "other-audience"])
async def test_a_token_of_another_issuer_or_audience_is_refused(app_server: ServerProcess, claims: dict) -> None:
    client, refusal = await connect(app_server.url, minted(name="Mallory", **claims))
    assert client is None and refusal is not None and refusal["data"]["code"] == "unauthorized"


async def test_sessions_issued_here_carry_the_issuer_and_audience(app_server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{app_server.url}/api/session",
                                                          json={"name": "Ben"}) as resp:
        session = await resp.json()
    claims = jwt.decode(session["token"], SECRET_KEY, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == session["user"]["id"] and "iat" in claims
    assert await joined_as(app_server.url, session["token"]) == session["user"]


@pytest.mark.parametrize("claims, shown", [
    ({"preferred_username": "ana.s"}, "ana.s"),
    ({}, "app-user-1"),
    ({"name": "  Ana  ", "preferred_username": "ana.s"}, "Ana"),
    ({"name": "A" * 40}, "A" * 32),
], ids=["preferred-username", "sub", "name-first-trimmed", "cut-to-32"])
async def test_the_display_name_comes_from_the_claims(server_url: str, claims: dict, shown: str) -> None:
    assert (await joined_as(server_url, minted(**claims)))["name"] == shown


@pytest.mark.parametrize("claims", [{"name": "bell\x07"}, {"preferred_username": "zero\u200bwidth"},
                                    {"sub": ""}, {"sub": "x" * 65}, {"name": 7}],
                         ids=["control", "format", "empty-sub", "long-sub", "not-a-string"])
async def test_unusable_identity_claims_are_refused(server_url: str, claims: dict) -> None:
    client, refusal = await connect(server_url, minted(**claims))
    assert client is None and refusal is not None and refusal["data"]["code"] == "unauthorized"


async def test_without_anonymous_sessions_only_the_apps_tokens_get_in(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(ANONYMOUS_SESSIONS="off")
    async with aiohttp.ClientSession() as http:
        for route in ("/api/session", "/api/session/renew"):
            async with http.post(server.url + route, json={"name": "Ana"},
                                 headers={"Authorization": f"Bearer {minted(name='Ana')}"}) as resp:
                assert resp.status == 404, route
                assert (await resp.json())["error"]["code"] == "not_found"
    assert await joined_as(server.url, minted(name="Ana")) == {"id": "app-user-1", "name": "Ana"}
    async with aiohttp.ClientSession() as http, http.get(server.url + "/") as resp:
        page = await resp.text()
    assert "You sign in with the app this chat belongs to" in page and "No account needed" not in page


async def test_with_anonymous_sessions_the_home_page_invites_a_name(server_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(server_url + "/") as resp:
        page = await resp.text()
    assert "No account needed" in page and "You sign in with the app" not in page
