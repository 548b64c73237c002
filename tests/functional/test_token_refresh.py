"""Tokens that expire while connected (contract v2): `token_expiring` ahead of `exp`,
`refresh` for the same user only, and `token_expired` with a disconnect at `exp`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import jwt
import pytest

from tests.chat_client import ChatClient, new_room
from tests.conftest import SECRET_KEY, ServerProcess


def token(sub: str, lifetime: float, **claims: object) -> str:
    """A token as the app's backend mints it, expiring `lifetime` seconds from now."""
    now = time.time()
    return jwt.encode({"sub": sub, "iat": int(now), "exp": int(now + lifetime), **claims}, SECRET_KEY,
                      algorithm="HS256")


def expiry_ms(signed: str) -> int:
    return jwt.decode(signed, options={"verify_signature": False})["exp"] * 1000


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(TOKEN_REFRESH_NOTICE="2")


async def connected(server: ServerProcess, signed: str, sub: str) -> ChatClient:
    client = ChatClient(server.url, signed, {"id": sub, "name": sub})
    await client.connect()
    return client


async def test_an_unrefreshed_connection_is_told_ahead_then_closed_at_exp(server: ServerProcess):
    signed = token("short-lived", 4)
    client = await connected(server, signed, "short-lived")
    await asyncio.sleep(0.5)
    assert client.received["token_expiring"] == []  # more than the notice (2 s) away
    [notice] = await client.wait_for("token_expiring", lambda got: len(got) == 1, timeout=4)
    assert notice == {"expires_at": expiry_ms(signed)}
    assert client.sio.connected
    await client.wait_for("token_expired", lambda got: got == [{}], timeout=4)
    await client.wait_for("disconnect", lambda got: len(got) == 1)
    assert time.time() * 1000 >= expiry_ms(signed) - 100
    assert not client.sio.connected


async def test_a_token_expiring_sooner_than_the_notice_is_announced_at_connect(server: ServerProcess):
    signed = token("almost-expired", 1.5)
    client = await connected(server, signed, "almost-expired")
    [notice] = await client.wait_for("token_expiring", lambda got: len(got) == 1, timeout=1)
    assert notice == {"expires_at": expiry_ms(signed)}
    await client.close()


async def test_refresh_keeps_the_connection_and_its_rooms(server: ServerProcess):
    client = await connected(server, token("refresher", 3), "refresher")
    room = new_room("refresh")
    await client.join(room)
    await client.wait_for("token_expiring", lambda got: len(got) == 1, timeout=3)
    fresh = token("refresher", 600)
    ack = await client.call("refresh", {"token": fresh})
    assert ack == {"ok": True, "expires_at": expiry_ms(fresh)}
    await asyncio.sleep(3.5)  # past the old expiry
    assert client.received["token_expired"] == [] and client.sio.connected
    sent = await client.send(room, "still here")
    assert sent["text"] == "still here"
    await client.close()


async def test_a_refresh_with_a_token_inside_the_notice_is_told_halfway_not_at_once(server: ServerProcess):
    client = await connected(server, token("short-refresher", 1.5), "short-refresher")
    await client.wait_for("token_expiring", lambda got: len(got) == 1, timeout=1)
    fresh = token("short-refresher", 2)  # within the 2 s notice
    ack = await client.call("refresh", {"token": fresh})
    assert ack["ok"], ack
    await asyncio.sleep(0.3)
    assert len(client.received["token_expiring"]) == 1, "no notice loop right after a refresh"
    notices = await client.wait_for("token_expiring", lambda got: len(got) == 2, timeout=3)
    assert notices[-1] == {"expires_at": expiry_ms(fresh)}
    await client.close()


@pytest.mark.parametrize(("refreshing_with", "code"), [
    (lambda: token("someone-else", 600), "forbidden"),
    (lambda: jwt.encode({"sub": "holder", "exp": int(time.time()) + 600}, "a-wrong-secret-" * 3,
                        algorithm="HS256"), "unauthorized"),
    (lambda: token("holder", -60), "unauthorized"),
    (lambda: "not a token", "unauthorized"),
])
async def test_a_refused_refresh_leaves_the_old_expiry_standing(server: ServerProcess, refreshing_with, code):
    client = await connected(server, token("holder", 3), "holder")
    ack = await client.call("refresh", {"token": refreshing_with()})
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    await client.wait_for("token_expired", lambda got: got == [{}], timeout=5)
    await client.wait_for("disconnect", lambda got: len(got) == 1)


@pytest.mark.parametrize("payload", [None, {}, {"token": 5}, {"token": ""}, {"token": "x" * 9000}, ["token"]])
async def test_a_malformed_refresh_is_invalid_payload(server: ServerProcess, payload):
    client = await connected(server, token("fuzzer", 600), "fuzzer")
    ack = await client.call("refresh", payload)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", ack
    assert client.sio.connected
    await client.close()
