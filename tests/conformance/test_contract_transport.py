"""The contract's transport rules beyond the specifications' suites, each a way clients were
let down before: the official polling client kept waiting after disconnect(), sockets whose
client sent a close packet stayed open outside the per-address cap, a fractional ping
interval was announced truncated."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.chat_client import new_session
from tests.conformance.conftest import Target
from tests.conformance.engine_client import chat_session, frame, frames_until_closed, open_polling, open_websocket, push
from tests.conftest import ServerProcess

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(shutil.which("node") is None, reason="the official client runs on Node.js")
@pytest.mark.parametrize("server", ["ours", "node"])
def test_the_official_polling_client_exits_at_once_after_disconnect(server: str,
                                                                     request: pytest.FixtureRequest) -> None:
    target: Target = request.getfixturevalue(server)
    result = subprocess.run(["node", str(HERE / "polling_disconnect.js"), target.url, target.token],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    assert timings["exit_after_disconnect_ms"] < 1000, timings


async def refused_handshake(http: aiohttp.ClientSession, target: Target) -> int:
    async with http.get(target.url + "/socket.io/?EIO=4&transport=polling") as response:
        return response.status


async def test_sockets_that_sent_a_close_packet_free_their_slot(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(MAX_CONNECTIONS_PER_ADDRESS="3")
    target = Target("ours", server.url, (await new_session(server.url, "Cap"))["token"])
    async with aiohttp.ClientSession() as http:
        kept_open_by_client = []
        for _ in range(6):  # twice the cap: each closes on its close packet, though the client keeps it
            ws = await chat_session(http, target)
            await ws.send_str("1")
            await frames_until_closed(ws, 1)
            kept_open_by_client.append(ws)
        for _ in range(2):  # and over polling
            sid, _ = await open_polling(http, target)
            assert (await push(http, target, sid, "1")).status == 200
        live = []
        for _ in range(3):
            ws = await open_websocket(http, target)
            assert str(await frame(ws)).startswith("0")
            live.append(ws)
        assert await refused_handshake(http, target) == 429  # the cap still holds
        await live[0].close()
        await asyncio.sleep(0.2)
        assert await refused_handshake(http, target) == 200


async def test_a_fractional_ping_interval_is_announced_and_kept(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(PING_INTERVAL="1.5", PING_TIMEOUT="1")
    target = Target("ours", server.url, "")
    async with aiohttp.ClientSession() as http:
        ws = await open_websocket(http, target)
        opened = json.loads(str(await frame(ws))[1:])
        assert opened["pingInterval"] == 1500
        started = time.monotonic()
        assert await frame(ws) == "2"
        assert 1.45 <= time.monotonic() - started <= 2.0
        await ws.close()
