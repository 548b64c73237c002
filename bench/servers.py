"""The servers under test: start them on free loopback ports, watch their memory and CPU, stop them."""

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
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
QUIET_TIMEOUT = 30.0
# The contract caps RATE_LIMIT at 100000 per 10 s; the bench's publisher stays far below 10000 msg/s.
BENCH_RATE_LIMIT = "100000"
# Every bench client comes from 127.0.0.1, and the overload scenario lets queues grow for
# seconds: lift the per-address cap and the slow-client cut-off out of the measurement.
BENCH_CONNECTIONS_PER_ADDRESS = "1000000"
BENCH_BACKLOG = "1000000"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROBLEM = re.compile(r"Traceback|\b(ERROR|CRITICAL)\b|Exception|exception")

Target = Literal["ours", "reference"]


@dataclass
class Server:
    """A running server process and where its output goes."""

    target: Target
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


def free_port() -> int:
    """A loopback port free right now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_ours(repo: Path, log_dir: Path) -> Server:
    """Our server in embedded mode, with limits the load cannot reach."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(RATE_LIMIT=BENCH_RATE_LIMIT, MAX_CONNECTIONS_PER_ADDRESS=BENCH_CONNECTIONS_PER_ADDRESS,
               MAX_BACKLOG=BENCH_BACKLOG, SECRET_KEY=secrets.token_urlsafe(32))
    port = free_port()
    command = [sys.executable, "-m", "chatserver", "--host", HOST, "--port", str(port)]
    return _start("ours", command, repo, env, port, log_dir)


def start_reference(reference_dir: Path, log_dir: Path) -> Server:
    """The Node reference server, installing its dependencies first if they are missing."""
    if not (reference_dir / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=reference_dir, check=True)
    port = free_port()
    command = ["node", "server.js", "--host", HOST, "--port", str(port)]
    return _start("reference", command, reference_dir, dict(os.environ), port, log_dir)


def _start(target: Target, command: list[str], cwd: Path, env: dict[str, str], port: int, log_dir: Path) -> Server:
    log_path = log_dir / f"{target}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(target, process, port, log_path, log_file)
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
            raise RuntimeError(f"{server.target} server exited with {server.process.returncode}; see {server.log_path}")
        try:
            with socket.create_connection((HOST, server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.target} server did not listen on port {server.port} within {START_TIMEOUT:.0f} s")


def stop(server: Server) -> int | None:
    """SIGTERM, then SIGKILL if it lingers; the exit code (None if it had to be killed)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
            server.log_file.close()
            return None
    server.log_file.close()
    return server.process.returncode


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
