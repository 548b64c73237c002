"""docs/examples: the push receiver, run as a real process behind a real server, turns a
message into a push for each offline member, once, and refuses forgeries and replays; the
Node.js check of a signature accepts what the server signs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.backend import call, signed_in
from tests.chat_client import new_room
from tests.conftest import ROOT, ServerProcess, eventually, free_port, wait_until
from tests.webhook_receiver import WEBHOOK_SECRET, Receiver, receiver_fixture  # noqa: F401

EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture
def push_receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The example running on a free port: its URL, and the file its stub provider writes to."""
    port, pushes = free_port(), tmp_path / "pushes.jsonl"
    with pushes.open("w") as out:
        process = subprocess.Popen([sys.executable, str(EXAMPLES / "push_receiver.py"), "--port", str(port)],
                                   env={"WEBHOOK_SECRET": WEBHOOK_SECRET, "PATH": ""}, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=ROOT)
        wait_until(lambda: _listening(port), 10, lambda: f"the example did not start: {pushes.read_text()}")
        yield f"http://127.0.0.1:{port}/hooks", pushes
        process.terminate()
        process.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def pushes_in(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def signed(body: bytes, *, at: int | None = None, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Chat-Timestamp": timestamp, "X-Chat-Signature": f"sha256={mac}", "Content-Type": "application/json"}


async def test_a_message_becomes_a_push_for_each_offline_member(
        push_receiver: tuple[str, Path], start_server: Callable[..., ServerProcess]) -> None:
    url, pushes = push_receiver
    server = start_server(WEBHOOK_URL=url, WEBHOOK_SECRET=WEBHOOK_SECRET)
    room = new_room("push")
    status, _ = await call(server.url, "PUT", f"/api/rooms/{room}", {"private": True, "members": [
        {"id": "ana", "name": "Ana"}, {"id": "ben", "name": "Ben"}, {"id": "cy", "name": "Cy"}]})
    assert status == 201
    ana = await signed_in(server.url, "ana", "Ana")
    await ana.join(room)
    message = await ana.send(room, "dinner at eight?")
    got = await eventually(lambda: pushes_in(pushes), lambda found: len(found) >= 2, 10, what="two pushes")
    assert sorted(push["to"] for push in got) == ["ben", "cy"]  # Ana is online: no push for her
    assert all(push["title"] == "Ana" and push["text"] == "dinner at eight?"
               and push["data"] == {"room": room, "seq": message["seq"]} for push in got)
    await ana.close()


async def test_repeats_forgeries_and_replays_make_no_push(push_receiver: tuple[str, Path]) -> None:
    url, pushes = push_receiver
    body = json.dumps({"id": "evt_1", "type": "message.created", "ts": 1, "data": {
        "message": {"room": "r", "seq": 1, "user": {"id": "a", "name": "A"}, "text": "hi"},
        "offline": ["b"]}}).encode()
    async with aiohttp.ClientSession() as http:
        async def post(headers: dict[str, str], data: bytes = body) -> int:
            async with http.post(url, data=data, headers=headers) as response:
                return response.status
        assert await post(signed(body)) == 204
        assert await post(signed(body)) == 204  # the same id again: handled once
        assert await post(signed(body, secret=WEBHOOK_SECRET + "!")) == 401
        assert await post(signed(body, at=int(time.time()) - 600)) == 401  # a replay of an old request
        assert await post(signed(body), data=body.replace(b'"hi"', b'"ha"')) == 401  # a body changed on the way
    assert [push["to"] for push in pushes_in(pushes)] == ["b"]


async def test_the_node_check_accepts_what_the_server_signs(
        receiver: Receiver, start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=WEBHOOK_SECRET)
    ana = await signed_in(server.url, "ana", "Ana")
    room = new_room("node")
    await ana.join(room)
    await ana.send(room, "signed ✓")
    request = (await eventually(lambda: receiver.requests, lambda found: len(found) >= 1, 10, what="a request"))[0]
    headers = {name.lower(): value for name, value in request.headers.items()}
    # the genuine request, the wrong secret, one byte more
    runner = (f"const {{ verified }} = await import({json.dumps((EXAMPLES / 'verify-signature.mjs').as_uri())});"
              "const [secret, headers, hex] = JSON.parse(process.argv[1]);"
              "const body = Buffer.from(hex, 'hex');"
              "console.log(JSON.stringify([verified(secret, headers, body), verified(secret + 'x', headers, body),"
              " verified(secret, headers, Buffer.concat([body, Buffer.from(' ')]))]));")
    node = await asyncio.create_subprocess_exec(
        "node", "--input-type=module", "-e", runner, json.dumps([WEBHOOK_SECRET, headers, request.body.hex()]),
        stdout=asyncio.subprocess.PIPE)
    output, _ = await asyncio.wait_for(node.communicate(), 30)
    assert node.returncode == 0 and json.loads(output) == [True, False, False]
    await ana.close()
