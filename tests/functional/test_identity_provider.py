"""Tokens from the app's identity provider (contract v2): RS256, ES256 and EdDSA tokens
verified against the provider's key set, with rotation, an unreachable set, and the
forgeries an attacker tries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import aiohttp
import jwt
import pytest

from tests.conftest import API_KEY, SECRET_KEY, ServerProcess
from tests.functional.test_app_identity import connect
from tests.identity_provider import AUDIENCE, ISSUER, KeySetServer, SigningKey, hmac_token, unsigned_token

RSA, EC, ED = SigningKey.new("rsa-1", "RS256"), SigningKey.new("ec-1", "ES256"), SigningKey.new("ed-1", "EdDSA")


@pytest.fixture
def key_set() -> Iterator[KeySetServer]:
    server = KeySetServer([RSA, EC, ED]).start()
    yield server
    server.stop()


@pytest.fixture
def idp_server(key_set: KeySetServer, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A chat server that trusts the provider's key set, for its issuer and audience."""
    return start_server(JWT_JWKS_URL=key_set.url, JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)


async def joined_members(url: str, token: str) -> list[dict]:
    client, refusal = await connect(url, token)
    assert client is not None, refusal
    try:
        ack = await client.call("join", {"room": "idp-lobby"}, namespace="/chat", timeout=5)
        return ack["members"]
    finally:
        await client.disconnect()


async def refusal_of(url: str, token: str) -> dict | None:
    """The data of the `connect_error` a token gets (`{"code", "message"}`); None if it connects."""
    client, refusal = await connect(url, token)
    if client is not None:
        await client.disconnect()
        return None
    assert refusal is not None
    return refusal["data"]


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=["RS256", "ES256", "EdDSA"])
async def test_a_token_signed_by_a_listed_key_connects_as_its_user(idp_server: ServerProcess, key: SigningKey):
    token = key.token(f"user-of-{key.kid}", preferred_username=f"Signed {key.algorithm}")
    members = await joined_members(idp_server.url, token)
    assert {"id": f"user-of-{key.kid}", "name": f"Signed {key.algorithm}"} in members


async def test_the_http_api_takes_the_providers_tokens_too(idp_server: ServerProcess):
    async with aiohttp.ClientSession() as http, http.get(
            f"{idp_server.url}/api/rooms/idp-lobby/messages",
            headers={"Authorization": f"Bearer {EC.token()}"}) as response:
        assert response.status == 200, await response.text()


@pytest.mark.parametrize("forge", [
    pytest.param(lambda: unsigned_token(RSA.kid), id="alg-none"),
    pytest.param(lambda: hmac_token(RSA.public_pem(), RSA.kid), id="HS256-with-the-public-key"),
    pytest.param(lambda: EC.token(kid=RSA.kid), id="ES256-token-naming-the-RSA-key"),
    pytest.param(lambda: RSA.token(algorithm="RS384"), id="RS384-with-the-right-key"),
    pytest.param(lambda: SigningKey.new(RSA.kid, "RS256").token(), id="another-key-under-a-listed-kid"),
    pytest.param(lambda: RSA.token(kid=""), id="no-kid"),
    pytest.param(lambda: RSA.token(iss="https://other.example"), id="another-issuer"),
    pytest.param(lambda: RSA.token(aud="another-app"), id="another-audience"),
    pytest.param(lambda: RSA.token(lifetime=-30), id="expired"),
    pytest.param(lambda: RSA.token(sub=""), id="empty-sub"),
])
async def test_a_token_that_cannot_be_verified_is_refused(idp_server: ServerProcess, forge: Callable[[], str]):
    refusal = await refusal_of(idp_server.url, forge())
    assert refusal is not None and refusal["code"] == "unauthorized", refusal


async def test_our_own_hs256_tokens_still_connect_beside_the_providers(idp_server: ServerProcess):
    token = jwt.encode({"sub": "backend-minted", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
                       SECRET_KEY, algorithm="HS256")
    assert {"id": "backend-minted", "name": "backend-minted"} in await joined_members(idp_server.url, token)


async def test_rotation_a_new_key_is_fetched_at_its_first_token_and_at_most_every_30_seconds(
        key_set: KeySetServer, idp_server: ServerProcess):
    fetched_at_start = key_set.fetches
    rotated, later = SigningKey.new("rsa-2", "RS256"), SigningKey.new("rsa-3", "RS256")
    key_set.keys = [rotated, EC, ED]  # the provider rotated rsa-1 out
    assert await joined_members(idp_server.url, rotated.token("rotated-user"))
    assert key_set.fetches == fetched_at_start + 1
    refusal = await refusal_of(idp_server.url, RSA.token())  # the old key is gone from the set
    assert refusal is not None and refusal["code"] == "unauthorized"
    # a key published within 30 s of that refetch is not fetched for: no request per unknown kid
    key_set.keys = [rotated, later, EC, ED]
    for _ in range(3):
        refusal = await refusal_of(idp_server.url, later.token())
        assert refusal is not None and refusal["code"] == "unauthorized"
    assert key_set.fetches == fetched_at_start + 1


async def test_while_the_key_set_is_unreachable_cached_keys_still_verify(
        key_set: KeySetServer, idp_server: ServerProcess):
    key_set.available = False
    assert await joined_members(idp_server.url, ED.token("cached-key-user"))
    refusal = await refusal_of(idp_server.url, SigningKey.new("new-1", "ES256").token())
    assert refusal is not None and refusal["code"] == "unauthorized"
    assert "key set unavailable" in idp_server.log()


async def test_a_server_started_while_the_set_is_unreachable_fetches_it_at_the_first_token(
        key_set: KeySetServer, start_server: Callable[..., ServerProcess]):
    key_set.available = False
    server = start_server(JWT_JWKS_URL=key_set.url, JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)
    assert "key set unavailable" in server.log()
    key_set.available = True
    assert await joined_members(server.url, RSA.token("first-after-outage"))


async def test_without_a_key_set_the_providers_tokens_are_refused(start_server: Callable[..., ServerProcess]):
    server = start_server(JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)
    refusal = await refusal_of(server.url, RSA.token())
    assert refusal is not None and refusal["code"] == "unauthorized"


async def test_a_key_set_nested_past_the_json_decoders_depth_counts_as_unreachable(
        key_set: KeySetServer, start_server: Callable[..., ServerProcess]):
    key_set.body = b"[" * 100_000 + b"]" * 100_000
    server = start_server(JWT_JWKS_URL=key_set.url, JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)
    refusal = await refusal_of(server.url, RSA.token())
    assert refusal is not None and refusal["code"] == "unauthorized"
    assert "key set unavailable" in server.log()


async def test_a_revoked_token_is_refused_by_the_http_api_too(idp_server: ServerProcess):
    token = RSA.token("revoked-on-http", iat=int(time.time()) - 5)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{idp_server.url}/api/users/revoked-on-http/disconnect", json={"revoke": True},
                             headers={"Authorization": f"Bearer {API_KEY}"}) as response:
            assert response.status == 202
        async with http.get(f"{idp_server.url}/api/rooms/idp-lobby/messages",
                            headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthorized"
