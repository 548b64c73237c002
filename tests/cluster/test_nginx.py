"""A real nginx in front of two instances, with each configuration of deploy/."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.chat_client import new_room, new_session
from tests.conftest import ROOT, free_port, wait_until

DEPLOY = ROOT / "deploy"
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                reason="nginx is installed by `make test`")


def start_nginx(tmp_path: Path, site: str, backends: list[int]) -> tuple[subprocess.Popen[bytes], int]:
    """nginx with the deploy/ site file, its ports rewritten to ours; returns (process, port)."""
    port = free_port()
    conf = (DEPLOY / site).read_text()
    conf = conf.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("server 127.0.0.1:8081;", f"server 127.0.0.1:{backends[0]};")
    conf = conf.replace("server 127.0.0.1:8082;", f"server 127.0.0.1:{backends[1]};")
    (tmp_path / "site.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/site.conf;
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stderr() -> str:
        return proc.stderr.read().decode() if proc.stderr else ""

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited at start (code {proc.returncode}): {stderr()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True

    def failure() -> str:
        proc.kill()  # before reading stderr, which ends only when nginx does
        return f"nginx did not start: {stderr()}"

    wait_until(answers, 10, failure)
    return proc, port


async def official_client(url: str, token: str, room: str, text: str, expect: int, mode: str = "") -> dict:
    proc = await asyncio.create_subprocess_exec(
        "node", str(ROOT / "tests" / "cluster" / "official_client.js"), url, token, room, text, str(expect), mode,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def open_connections(url: str) -> float:
    """The `chat_connections` gauge of one instance."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith("chat_connections "))


@pytest.fixture
def nginx(tmp_path):
    started: list[subprocess.Popen[bytes]] = []

    def start(site: str, backends: list[int]) -> str:
        proc, port = start_nginx(tmp_path, site, backends)
        started.append(proc)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


async def test_official_client_polls_then_upgrades_through_sticky_nginx(start_server, redis_url, nginx, make_client):
    # as deploy/README.md advises: believe nginx's X-Forwarded-For
    a, b = (start_server(REDIS_URL=redis_url, TRUSTED_PROXIES="127.0.0.1") for _ in range(2))
    url = nginx("chat-sticky.conf", [a.port, b.port])
    room = new_room("nginx")
    direct = await make_client("Direct", url=b.url)  # straight on an instance, to see what crosses
    await direct.join(room)
    result = await official_client(url, direct.token, room, "via nginx", 1)
    assert result["transports"] == ["polling", "websocket"]
    assert result["messages"] == ["via nginx"]
    got = await direct.wait_for("message", lambda m: len(m) == 1)
    assert got[0]["text"] == "via nginx"


async def test_websocket_only_needs_no_stickiness(start_server, redis_url, nginx, make_client):
    a = start_server(REDIS_URL=redis_url, TRANSPORTS="websocket")
    b = start_server(REDIS_URL=redis_url, TRANSPORTS="websocket")
    url = nginx("chat-websocket-only.conf", [a.port, b.port])
    room = new_room("nginx-ws")
    # sessions straight from an instance, so that only the WebSockets go through nginx's round robin
    clients = [await make_client(url=url, session=await new_session(a.url, f"U{n}")) for n in range(4)]
    for client in clients:
        await client.join(room)
    result = await official_client(url, clients[0].token, room, "ws only", 1, "websocket-only")
    assert result["transports"] == ["websocket"]
    for client in clients:
        got = await client.wait_for("message", lambda m: len(m) == 1)
        assert got[0]["text"] == "ws only"
    connected = [await open_connections(server.url) for server in (a, b)]
    assert all(count >= 1 for count in connected), connected  # both instances served some of them
