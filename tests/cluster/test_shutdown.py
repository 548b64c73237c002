"""SIGTERM: stop, send clients elsewhere, lose nothing that was acknowledged."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp

from tests.chat_client import ChatClient, new_room, new_session
from tests.conftest import ROOT, eventually


async def stored_ids(client: ChatClient, room: str) -> set[str]:
    """Ids of every message in the room's history, paging backwards."""
    ids: set[str] = set()
    before: dict[str, int] = {}
    while True:
        page = await client.call("history", {"room": room, "limit": 100, **before})
        ids |= {m["id"] for m in page["messages"]}
        if not page["has_more"]:
            return ids
        before = {"before_seq": page["messages"][0]["seq"]}


async def test_sigterm_sends_clients_elsewhere_and_loses_no_acked_message(start_server, redis_url, make_client):
    a, b = start_server(REDIS_URL=redis_url, RATE_LIMIT="100000"), start_server(REDIS_URL=redis_url)
    room = new_room("drain")
    sender = await make_client("Sender", url=a.url)
    watcher = await make_client("Watcher", url=b.url)
    await sender.join(room)
    await watcher.join(room)
    browser = await asyncio.create_subprocess_exec(
        "node", str(ROOT / "tests" / "cluster" / "disconnect_reason.js"), a.url, watcher.token,
        stdout=asyncio.subprocess.PIPE)
    assert await browser.stdout.readline() == b"connected\n"

    acked: list[dict] = []

    async def keep_sending() -> None:
        n = 0
        while sender.sio.connected:
            try:
                ack = await sender.call("message", {"room": room, "text": f"m{n}", "client_id": f"m{n}"}, timeout=2)
            except Exception:
                return
            if ack.get("ok"):
                acked.append(ack["message"])
            n += 1

    sending = asyncio.create_task(keep_sending())
    await asyncio.sleep(0.5)
    started = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    reason = (await asyncio.wait_for(browser.stdout.readline(), 10)).decode().strip()
    told_in = time.monotonic() - started
    exit_code = await asyncio.to_thread(a.proc.wait, 15)
    stopped_in = time.monotonic() - started
    await sending

    assert exit_code == 0 and stopped_in < 5, (exit_code, stopped_in)
    # The official client is sent away at once, before in-flight work ends, with "transport close",
    # on which it reconnects (through a balancer: to another instance).
    assert reason == "transport close" and told_in < 1.5, (reason, told_in)
    assert len(acked) > 5
    assert {m["id"] for m in acked} <= await stored_ids(watcher, room)
    members = await watcher.call("members", {"room": room})
    assert [u["name"] for u in members["members"]] == ["Watcher"]  # the sender's presence went with it


async def test_sigterm_right_after_many_clients_vanished_still_exits(start_server):
    server = start_server()
    session = await new_session(server.url, "Crowd")
    crowd = await asyncio.create_subprocess_exec(
        "node", str(ROOT / "tests" / "cluster" / "many_clients.js"), server.url, session["token"], "200",
        stdout=asyncio.subprocess.PIPE)
    assert await asyncio.wait_for(crowd.stdout.readline(), 30) == b"ready\n"
    crowd.kill()  # 200 clients gone at once, without a goodbye
    await crowd.wait()
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.proc.wait, 20) == 0
    assert time.monotonic() - started < 5


async def test_draining_answers_503_before_any_client_is_disconnected(start_server, make_client):
    server = start_server(SHUTDOWN_DELAY="3")
    room = new_room("drain")
    ana = await make_client("Ana", url=server.url)
    await ana.join(room)
    server.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        async def readiness() -> int:
            async with http.get(server.url + "/readyz") as response:
                return response.status
        await eventually(readiness, lambda status: status == 503, 1, what="/readyz answering 503")
        seen_in = time.monotonic() - started
        # The balancer has seen 503; the instance still serves its users meanwhile.
        assert ana.sio.connected
        assert (await ana.send(room, "still served while draining"))["seq"] == 1
        async with http.get(server.url + "/metrics") as response:
            assert "chat_draining 1.0" in await response.text()
    await eventually(lambda: ana.sio.connected, lambda connected: not connected, 10, what="the client sent away")
    dropped_in = time.monotonic() - started
    assert await asyncio.to_thread(server.proc.wait, 15) == 0
    assert seen_in < 1 and 2.5 < dropped_in < 8, (seen_in, dropped_in)
