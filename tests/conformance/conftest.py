"""Two servers for the transport conformance tests, both with pings of 1 s and a pong
timeout of 1 s: ours, and Node's Socket.IO server (bench/reference), which calibrates the
tests. A test run on both that passes on Node and fails on ours is a deviation of ours;
one that fails on both is a wrong test."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bench.servers import REFERENCE_DIR, install_node_modules
from tests.conftest import ServerProcess, free_port, server_env, wait_until

PING_INTERVAL = 1.0
PING_TIMEOUT = 1.0
# Long enough for three heartbeats before any namespace connect (the specification's tests).
CONNECT_TIMEOUT = 5.0
TIMINGS = {"PING_INTERVAL": PING_INTERVAL, "PING_TIMEOUT": PING_TIMEOUT, "CONNECT_TIMEOUT": CONNECT_TIMEOUT}


@dataclass(frozen=True)
class Target:
    """A server under test: where it is and a token its `/chat` namespace accepts."""

    name: str
    url: str
    token: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1)


@pytest.fixture(scope="session")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """Our server, embedded, with the conformance timings."""
    log_path = tmp_path_factory.mktemp("conformance") / "ours.log"
    server = ServerProcess(env=server_env(**{name: str(value) for name, value in TIMINGS.items()}),
                           log_path=log_path).start()
    request = urllib.request.Request(f"{server.url}/api/session", data=json.dumps({"name": "Conformance"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        token = json.load(response)["token"]
    yield Target("ours", server.url, token)
    server.stop()
    assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """Node's Socket.IO 4.8 (bench/reference/server.js) with the same timings."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    install_node_modules(REFERENCE_DIR)
    port = free_port()
    log_path: Path = tmp_path_factory.mktemp("conformance") / "node.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["node", "server.js", "--host", "127.0.0.1", "--port", str(port),
             "--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT),
             "--connect-timeout", str(CONNECT_TIMEOUT)],
            cwd=REFERENCE_DIR, stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: b"listening" in log_path.read_bytes(), 15, lambda: log_path.read_text())
    yield Target("node", f"http://127.0.0.1:{port}", "any-token")
    process.terminate()
    process.wait(10)


@pytest.fixture(params=["ours", "node"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each server in turn, for a rule that holds for both."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client of the test's own; what it opened is closed with it."""
    async with aiohttp.ClientSession() as session:
        yield session
