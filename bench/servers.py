"""The processes under test: our server, the Node reference and Redis, each on a free loopback port;
their memory and CPU; stopping them."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

HOST = "127.0.0.1"  # the only address any load may target
REPO = Path(__file__).resolve().parent.parent
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
QUIET_TIMEOUT = 30.0
# The contract caps RATE_LIMIT at 100000 per 10 s; a bench sender stays far below 10000 msg/s.
BENCH_RATE_LIMIT = "100000"
# Every bench client comes from 127.0.0.1, and the overload scenario lets queues grow for
# seconds: lift the per-address cap and the slow-client cut-off out of the measurement.
BENCH_CONNECTIONS_PER_ADDRESS = "1000000"
BENCH_BACKLOG = "1000000"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROBLEM = re.compile(r"Traceback|\b(ERROR|CRITICAL)\b|Exception|exception")

Target = Literal["ours", "reference"]
TARGETS: tuple[Target, ...] = ("ours", "reference")


@dataclass
class Server:
    """A running process (a server under test or Redis) and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log_file: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


def install_node_modules(directory: Path) -> None:
    """`npm ci` in a folder whose pinned packages are not installed yet."""
    if not (directory / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=directory, check=True)


def free_port() -> int:
    """A loopback port free right now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_target(target: Target, log_dir: Path, label: str, redis_url: str | None, secret_key: str,
                 webhook_url: str | None = None) -> Server:
    """Our server or the reference, alone (`redis_url` None) or on Redis. Instances of ours that
    share a Redis need the same `secret_key`, to accept each other's tokens; with `webhook_url`
    ours posts its webhook events there (the reference has none)."""
    if target == "ours":
        return start_ours(log_dir, label, redis_url, secret_key, webhook_url)
    return start_reference(log_dir, label, redis_url)


def start_ours(log_dir: Path, label: str, redis_url: str | None, secret_key: str,
               webhook_url: str | None = None) -> Server:
    """Our server, embedded or on Redis, with limits the load cannot reach."""
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "WEBHOOK_URL")}
    env.update(RATE_LIMIT=BENCH_RATE_LIMIT, MAX_CONNECTIONS_PER_ADDRESS=BENCH_CONNECTIONS_PER_ADDRESS,
               MAX_BACKLOG=BENCH_BACKLOG, SECRET_KEY=secret_key)
    if redis_url:
        env["REDIS_URL"] = redis_url
    if webhook_url:
        env.update(WEBHOOK_URL=webhook_url, WEBHOOK_SECRET=new_secret())
    port = free_port()
    command = [sys.executable, "-m", "chatserver", "--host", HOST, "--port", str(port)]
    return _start(label, command, REPO, env, port, log_dir)


def start_reference(log_dir: Path, label: str, redis_url: str | None) -> Server:
    """bench/reference/server.js, alone or with the Socket.IO Redis adapter."""
    port = free_port()
    command = ["node", "server.js", "--host", HOST, "--port", str(port)]
    if redis_url:
        command += ["--redis", redis_url]
    return _start(label, command, REFERENCE_DIR, dict(os.environ), port, log_dir)


@dataclass(frozen=True)
class Redis:
    """The Redis the servers of a run share; `pid` is None for one the bench did not start."""

    url: str
    pid: int | None


def start_redis(log_dir: Path) -> tuple[Redis, Server]:
    """A redis-server of the bench's own on a free loopback port, keeping nothing on disk."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    server = _start("redis", command, log_dir, dict(os.environ), port, log_dir)
    return Redis(f"redis://{HOST}:{port}/0", server.pid), server


def start_webhook_receiver(log_dir: Path) -> tuple[str, Server]:
    """bench/receiver.py on a free loopback port, answering every event at once; its URL."""
    port = free_port()
    server = _start("receiver", [sys.executable, "-m", "bench.receiver", "--port", str(port)], REPO,
                    dict(os.environ), port, log_dir)
    return f"http://{HOST}:{port}/hooks", server


def unanswered_webhook_url() -> str:
    """A loopback URL nothing listens at: a receiver that is down."""
    return f"http://{HOST}:{free_port()}/hooks"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _start(name: str, command: list[str], cwd: Path, env: dict[str, str], port: int, log_dir: Path) -> Server:
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(name, process, port, log_path, log_file)
    try:
        _wait_listening(server)
    except BaseException:
        stop(server)
        raise
    return server


def _wait_listening(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}; see {server.log_path}")
        try:
            with socket.create_connection((HOST, server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not listen on port {server.port} within {START_TIMEOUT:.0f} s")


def stop(server: Server) -> int | None:
    """SIGTERM, then SIGKILL if it lingers; the exit code (None if it had to be killed)."""
    code: int | None = None
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    else:
        code = server.process.returncode
    server.log_file.close()
    return code


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15


def wait_quiet(pid: int, timeout: float = QUIET_TIMEOUT, busy: float = 0.05, interval: float = 0.5) -> bool:
    """Wait until the process uses under `busy` of a core for `interval` seconds, so that a
    scenario's backlog (an overloaded server keeps working after the load stops) does not spill
    into the next one. False if it is still busy after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(interval)
        if cpu_seconds(pid) - before < busy * interval:
            return True
    return False


def log_problems(server: Server, limit: int = 5) -> list[str]:
    """The first lines of the server's log that look like errors or tracebacks."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if PROBLEM.search(line)][:limit]
