"""Hostile input: thousands of random payloads and raw frames. The server answers every
event with an ack of the contract, closes connections that speak no Socket.IO, never
logs a traceback (the `start_server` fixture checks), and nobody else hears a thing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.chat_client import NAMESPACE, ChatClient, new_room, new_session
from tests.conftest import ServerProcess
from tests.raw_socket import RawSocket, polling_sid

ERROR_CODES = {"invalid_payload", "invalid_room", "forbidden", "not_joined", "too_large", "rate_limited",
               "unauthorized", "not_found"}
EVENTS = ["join", "leave", "message", "typing", "history", "members", "refresh", "kick", "ban", "unban", "mute",
          "unmute", "edit", "delete", "react", "read"]
FIELDS = ["room", "text", "client_id", "since", "invite", "typing", "before_seq", "limit", "seq", "epoch", "token",
          "user_id", "seconds", "reason", "role", "rev", "emoji", "on", "reply_to"]
EDGE_TEXT = ["", " ", "\x00", "\u202e", "\ufeff", "\ud800", "\udfff", "a\u0000b", "💬" * 70, "lobby\n",
             "0" * 65, "../etc", "<script>", "5", "-1", "1e309", "NaN", "true", "null", "\r\n\t"]
FUZZ_EXAMPLES = 600
RAW_EXAMPLES = 300


def json_values(depth_leaves: int = 20) -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**70, max_value=2**70)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=80) | st.sampled_from(EDGE_TEXT))
    return st.recursive(scalars, lambda children: st.lists(children, max_size=6)
                        | st.dictionaries(st.text(max_size=12) | st.sampled_from(FIELDS), children, max_size=6),
                        max_leaves=depth_leaves)


def payloads() -> st.SearchStrategy[Any]:
    """Mostly objects with the contract's field names holding anything; sometimes not objects at all."""
    fielded = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values(), max_size=6)
    near_valid = st.fixed_dictionaries({"room": st.sampled_from(["lobby", "fuzz", "x" * 64]) | json_values()},
                                       optional={name: json_values() for name in FIELDS[1:]})
    huge = st.builds(lambda n: {"room": "lobby", "text": "x" * n}, st.integers(4001, 20_000))
    deep = st.builds(lambda n: {"room": json.loads("[" * n + "]" * n)}, st.integers(1, 400))
    return near_valid | fielded | json_values() | huge | deep


def is_contract_ack(ack: Any) -> bool:
    if not isinstance(ack, dict) or not isinstance(ack.get("ok"), bool):
        return False
    if ack["ok"]:
        return True
    error = ack.get("error")
    return isinstance(error, dict) and error.get("code") in ERROR_CODES and isinstance(error.get("message"), str)


@pytest.fixture(params=["memory", "redis"])
def fuzz_server(request: pytest.FixtureRequest, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A server of each store: what reaches Redis must survive encoding there too."""
    if request.param == "redis":
        return start_server(RATE_LIMIT="100000", REDIS_URL=request.getfixturevalue("redis_url"))
    return start_server(RATE_LIMIT="100000")


async def _observer(url: str) -> tuple[ChatClient, str]:
    """A user in a room of its own: anything it receives came from the attack."""
    session = await new_session(url, "Observer")
    observer = ChatClient(url, session["token"], session["user"])
    await observer.connect()
    room = new_room("observer")
    await observer.join(room)
    return observer, room


def test_random_payloads_get_contract_acks_and_reach_nobody(fuzz_server: ServerProcess) -> None:
    with asyncio.Runner() as runner:
        observer, _ = runner.run(_observer(fuzz_server.url))
        session = runner.run(new_session(fuzz_server.url, "Mallory"))
        attacker = ChatClient(fuzz_server.url, session["token"], session["user"])
        runner.run(attacker.connect())
        answered: list[str] = []

        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(event=st.sampled_from(EVENTS) | st.text(max_size=20), payload=payloads(),
               extra_args=st.lists(json_values(5), max_size=2))
        def attack(event: str, payload: Any, extra_args: list[Any]) -> None:
            ack = runner.run(attacker.call(event, payload, *extra_args))
            assert is_contract_ack(ack), (event, payload, ack)
            answered.append(event)

        attack()
        assert attacker.sio.connected, "a payload dropped the attacker's connection"
        runner.run(asyncio.sleep(0.3))
        assert not any(observer.received.values()), observer.received
        assert fuzz_server.healthy()
        runner.run(attacker.close())
        runner.run(observer.close())
    assert len(answered) >= FUZZ_EXAMPLES // 2  # hypothesis really ran the examples


NS = NAMESPACE  # short, for the frame literals below
PREFIXES = ["", "4", "42", f"42{NS},", f"42{NS},1", f"40{NS},", f"41{NS},", f"43{NS},1", f"44{NS},", f"45-{NS},",
            f"451-{NS},1", f"46{NS},", "47", f"4{NS},", "b", "1", "2", "3", "5", "6", "7", "x", "42/other,"]


def raw_frames() -> st.SearchStrategy[str | bytes]:
    json_text = json_values(10).map(lambda value: json.dumps(value, allow_nan=True))
    sendable = [text for text in EDGE_TEXT if text.isascii() or text.encode("utf-8", "ignore").decode() == text]
    text = st.builds(lambda prefix, body: prefix + body, st.sampled_from(PREFIXES),
                     json_text | st.text(max_size=60) | st.sampled_from(sendable)
                     | st.builds(lambda n: "[" * n, st.integers(900, 5000)))
    return text | st.binary(max_size=64)


def test_random_raw_frames_close_only_the_sender(fuzz_server: ServerProcess) -> None:
    with asyncio.Runner() as runner:
        observer, observer_room = runner.run(_observer(fuzz_server.url))
        token = runner.run(new_session(fuzz_server.url, "Mallory"))["token"]
        attacker: list[RawSocket] = [runner.run(RawSocket.connect(fuzz_server.url, token))]
        sent: list[str | bytes] = []

        async def attack_with(frame: str | bytes) -> None:
            if attacker[0].ws.closed:
                await attacker[0].close()
                attacker[0] = await RawSocket.connect(fuzz_server.url, token)
            await attacker[0].send(frame)
            sent.append(frame)
            if isinstance(frame, str) and frame.startswith(("1", f"41{NS}")):  # a well-formed goodbye: no answer
                await attacker[0].close()
                return
            # Well-formed or not, the connection still answers, or the server has closed it.
            with contextlib.suppress(ConnectionError):
                assert is_contract_ack(await attacker[0].call("members", {"room": observer_room}, ack_id=777))

        @settings(max_examples=RAW_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(frame=raw_frames())
        def attack(frame: str | bytes) -> None:
            runner.run(attack_with(frame))

        attack()
        runner.run(asyncio.sleep(0.3))
        assert not any(observer.received.values()), observer.received
        assert fuzz_server.healthy()
        runner.run(attacker[0].close())
        runner.run(observer.close())
    assert len(sent) >= RAW_EXAMPLES // 2
    assert "closing connection" in fuzz_server.log()


@pytest.mark.parametrize("frame", [
    f"42{NS},[]", f"42{NS},{{", f"42{NS},5", f"42{NS},[5]", "4x", "49", "zz", f'45-{NS},["x",{{}}]',
    f"42{NS}," + "[" * 5000, "b@@@", b"\x00\x01", "4" + "[" * 5000, f'40{NS},"x"', f"42{NS},1[]",
    "4", "4{}", "4null", "4[]", "2" + "[" * 950, "3" + "{\"a\":" * 990,
])
async def test_each_malformed_frame_closes_with_one_warning(start_server: Callable[..., ServerProcess],
                                                            frame: str | bytes) -> None:
    server = start_server()
    session = await new_session(server.url, "Mallory")
    raw = await RawSocket.connect(server.url, session["token"])
    await raw.send(frame)
    assert await raw.closed_by_server()
    await raw.close()
    # the server goes on serving: a new connection works
    raw = await RawSocket.connect(server.url, session["token"])
    assert (await raw.call("join", {"room": "lobby"}))["ok"]
    await raw.close()
    warnings = [line for line in server.log().splitlines() if "closing connection" in line]
    assert len(warnings) == 1, server.log()


async def test_malformed_polling_body_is_refused(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    async with aiohttp.ClientSession() as http:
        for body in [b"\xff\xfe", b"zz", b"4" + b"[" * 5000, b"4x\x1e", b"b!!"]:
            sid = await polling_sid(http, server.url)
            async with http.post(server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}", data=body) as response:
                assert response.status == 400
                assert (await response.json())["error"]["code"] == "invalid_payload"
    assert server.healthy()

