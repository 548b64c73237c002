"""Fixtures: real server processes on free loopback ports, and real Socket.IO clients."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from tests.chat_client import ChatClient, new_session

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
API_KEY = "test-api-key-0123456789"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], seconds: float, failure: Callable[[], str]) -> None:
    """Poll `ready` (an OSError counts as not yet) until it holds; else raise with `failure()`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(failure())


async def eventually(probe: Callable[[], T | Awaitable[T]], done: Callable[[T], bool], seconds: float, *,
                     interval: float = 0.05, what: str = "the condition") -> T:
    """Call `probe` (sync or async) until `done(value)` holds and return that value; after
    `seconds`, fail with the last value seen. Exceptions from `probe` are not retried."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not hold within {seconds} s; last seen: {value!r}")
        await asyncio.sleep(interval)


@dataclass
class ServerProcess:
    """`python -m chatserver` running on a loopback port; its log goes to `log_path`."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chatserver", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.healthy, 15, lambda: f"server did not become healthy:\n{self.log()}")
        return self

    def healthy(self) -> bool:
        """Whether /healthz answers 200; raises if the process has exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited (code {self.proc.returncode}):\n{self.log()}")
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def server_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "PORT", "HOST")}
    env.update(SECRET_KEY=SECRET_KEY, API_KEY=API_KEY, LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


@dataclass
class RedisProcess:
    """A redis-server of the tests' own on a loopback port (nothing kept on disk)."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()  # more redis-server arguments, such as ("--replicaof", host, port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             # a replica's full sync writes an RDB file: keep it out of the working tree
             "--dir", tempfile.mkdtemp(prefix="chat-test-redis-"), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers_ping, 10, lambda: "redis-server did not start")
        return self

    def command(self, line: str) -> bytes:
        """The raw reply to one inline command."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(line.encode() + b"\r\n")
            return sock.recv(65536)

    def _answers_ping(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited at start (code {self.proc.returncode}) on port {self.port}")
        return self.command("PING").startswith(b"+PONG")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def shut_down(self) -> None:
        """Stop as an operator does (SIGTERM): Redis writes its append-only file out first."""
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when the environment sets it, else a redis-server started for the test session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = RedisProcess().start()
    yield server.url
    server.stop()


SERVICE = "chat"


@dataclass
class SentinelSet:
    master: RedisProcess
    replica: RedisProcess
    sentinel: RedisProcess

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}"

    def master_port(self) -> int:
        """The port Sentinel names as the master now."""
        reply = self.sentinel.command(f"SENTINEL get-master-addr-by-name {SERVICE}").decode().split("\r\n")
        return int(reply[4])


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    """A master, its replica and one Sentinel (quorum 1) that fails over after 1 s of silence."""
    master = RedisProcess(extra=("--repl-diskless-sync-delay", "0")).start()
    replica = RedisProcess(extra=("--replicaof", "127.0.0.1", str(master.port))).start()
    # A failover before the first sync would promote an empty replica.
    wait_until(lambda: b"master_link_status:up" in replica.command("INFO replication"), 10,
               lambda: "the replica did not sync")
    config = tmp_path / "sentinel.conf"
    config.write_text(f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 1\n"
                      f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                      f"sentinel failover-timeout {SERVICE} 5000\n")
    port = free_port()
    sentinel = RedisProcess(port=port)
    sentinel.proc = subprocess.Popen(
        ["redis-server", str(config), "--sentinel", "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers = SentinelSet(master, replica, sentinel)
    wait_until(lambda: servers.master_port() == master.port, 10, lambda: "sentinel did not see the master")
    yield servers
    for process in (sentinel, replica, master):
        process.stop()


@dataclass
class RedisCluster:
    """Three masters, no replicas, holding every slot between them."""

    masters: list[RedisProcess]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{master.port}" for master in self.masters)

    def state_ok(self, *masters: RedisProcess) -> bool:
        """Whether each of `masters` (default: all) reports `cluster_state:ok`."""
        return all(b"cluster_state:ok" in master.command("CLUSTER INFO") for master in masters or self.masters)

    def master_for(self, tag: str) -> RedisProcess:
        """The master serving the hash slot of `tag` (a key's hash tag, braces left out)."""
        slot = int(self.masters[0].command(f"CLUSTER KEYSLOT {tag}").decode()[1:].split()[0])
        for master in self.masters:
            nodes = master.command("CLUSTER NODES").decode()
            mine = next(line for line in nodes.splitlines() if "myself" in line)
            for served in mine.split()[8:]:
                first, _, last = served.partition("-")
                if int(first) <= slot <= int(last or first):
                    return master
        raise LookupError(f"no master serves slot {slot}")

    def move_slot(self, tag: str, *, to: RedisProcess) -> None:
        """Move the hash slot of `tag`, keys and all, to the master `to`, as a resharding
        does slot by slot (the Redis Cluster specification's migration steps)."""
        source = self.master_for(tag)
        with redis.Redis(port=source.port) as old, redis.Redis(port=to.port) as new:
            slot = old.execute_command("CLUSTER", "KEYSLOT", tag)
            old_id, new_id = old.execute_command("CLUSTER", "MYID"), new.execute_command("CLUSTER", "MYID")
            new.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", old_id)
            old.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", new_id)
            while keys := old.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                old.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
            for master in (to, source, *(m for m in self.masters if m not in (to, source))):
                with redis.Redis(port=master.port) as node:
                    node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", new_id)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A Redis Cluster of three masters on loopback, started once for the test session.
    Each node keeps its cluster config and an append-only file in a directory of its own,
    so a node shut down and restarted on its port rejoins with its slots and its data."""
    masters = []
    for n in range(3):
        directory = tmp_path_factory.mktemp(f"cluster-{n}")
        masters.append(RedisProcess(extra=(
            "--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf"),
            "--cluster-port", str(free_port()), "--cluster-node-timeout", "1000",
            "--dir", str(directory), "--appendonly", "yes")).start())
    cluster = RedisCluster(masters)
    try:
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{m.port}" for m in masters),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=30)
        wait_until(cluster.state_ok, 15, lambda: "the cluster did not reach cluster_state:ok")
        yield cluster
    finally:
        for master in masters:
            master.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with extra environment settings; each is stopped, and its log
    checked for tracebacks, at the end of the test."""
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        server = ServerProcess(env=server_env(**env), log_path=tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
    for server in started:
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # a generous rate limit: these tests send bursts; the limit has tests of its own
    log_path = tmp_path_factory.mktemp("shared") / "server.log"
    server = ServerProcess(env=server_env(RATE_LIMIT="100000"), log_path=log_path).start()
    yield server
    server.stop()
    assert "Traceback" not in server.log(), server.log()


@pytest.fixture
def server_url(shared_server: ServerProcess) -> str:
    """Base URL of a server shared by the tests that need no special settings."""
    return shared_server.url


@pytest.fixture
async def make_client(server_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Connect real Socket.IO clients as new users: `await make_client("Ana")`."""
    clients: list[ChatClient] = []

    async def make(name: str = "Ana", *, url: str | None = None, session: dict[str, Any] | None = None,
                   transports: list[str] | None = None) -> ChatClient:
        base = url or server_url
        session = session or await new_session(base, name)
        client = ChatClient(base, session["token"], session["user"], transports)
        await client.connect()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
