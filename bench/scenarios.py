"""The scenarios: drive bench/load.js against a running server and collect what it and the server report."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .servers import Server, cpu_seconds, rss_kib

BENCH_DIR = Path(__file__).resolve().parent
LOAD_JS = BENCH_DIR / "load.js"
WARM_CONNECTIONS = 50  # opened and closed before the memory baseline, so one-time costs are not counted
SETTLE_SECONDS = 2.0  # after connections open or close, before reading RSS
LOAD_TIMEOUT = 300.0

Result = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What to run; the defaults keep a run with the reference under about two minutes."""

    subscribers: int = 200
    inflight: int = 64
    duration: float = 15.0
    warmup: float = 3.0
    rate: float = 200.0
    idle: int = 1000
    idle_users: str = "shared"
    client: str = "lean"
    deflate: bool = True


def ensure_node_modules() -> None:
    """Install the generator's pinned dependencies if they are missing."""
    if not (BENCH_DIR / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--prefix", str(BENCH_DIR), "--no-audit", "--no-fund", "--loglevel=error"],
                       check=True)


def _load_command(server: Server, plan: Plan, mode: str, room: str, *extra: str) -> list[str]:
    command = ["node", str(LOAD_JS), "--url", server.url, "--target", server.target, "--mode", mode,
               "--room", room, "--client", plan.client, *extra]
    return [*command, "--no-deflate"] if not plan.deflate else command


def _events(process: subprocess.Popen[str]) -> Iterator[Result]:
    """The JSON lines load.js prints, as they come."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            yield json.loads(line)


def run_load(server: Server, plan: Plan, mode: str) -> Result:
    """Throughput (`mode="throughput"`) or fixed-rate (`"rate"`) load; load.js's result plus the
    server's CPU use during the measured window."""
    shape = ["--inflight", str(plan.inflight)] if mode == "throughput" else ["--rate", str(plan.rate)]
    command = _load_command(server, plan, mode, f"bench-{mode}", "--subscribers", str(plan.subscribers),
                            "--duration", str(plan.duration), "--warmup", str(plan.warmup), *shape)
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        started, cpu_before = 0.0, 0.0
        cpu_percent: float | None = None
        result: Result | None = None
        for event in _events(process):
            if event.get("event") == "measuring":
                started, cpu_before = time.monotonic(), cpu_seconds(server.pid)
            elif event.get("event") == "measured":
                used = cpu_seconds(server.pid) - cpu_before
                cpu_percent = 100 * used / (time.monotonic() - started)
            elif "event" not in event:
                result = event
        process.wait(LOAD_TIMEOUT)
    if process.returncode != 0 or result is None:
        raise RuntimeError(f"load.js {mode} against {server.target} failed (exit {process.returncode})")
    result["server_cpu_percent"] = None if cpu_percent is None else round(cpu_percent, 1)
    return result


def _hold_idle(server: Server, plan: Plan, connections: int, room: str) -> tuple[subprocess.Popen[str], Result]:
    """Starts load.js holding `connections` joined sockets; returns it once they are all open."""
    command = _load_command(server, plan, "idle", room, "--connections", str(connections),
                            "--users", plan.idle_users)
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for event in _events(process):
        if event.get("event") == "ready":
            return process, event
    process.wait(LOAD_TIMEOUT)
    raise RuntimeError(f"load.js idle against {server.target} failed (exit {process.returncode})")


def _release(process: subprocess.Popen[str]) -> None:
    """Closing stdin tells load.js to close its sockets and exit."""
    assert process.stdin is not None
    process.stdin.close()
    process.wait(LOAD_TIMEOUT)


def measure_memory(server: Server, plan: Plan) -> Result:
    """Server RSS growth per idle joined connection: (RSS with C open - RSS before) / C."""
    warm, _ = _hold_idle(server, plan, WARM_CONNECTIONS, "bench-warm")
    _release(warm)
    time.sleep(SETTLE_SECONDS)
    before = rss_kib(server.pid)
    process, ready = _hold_idle(server, plan, plan.idle, "bench-idle")
    try:
        time.sleep(SETTLE_SECONDS)
        after = rss_kib(server.pid)
    finally:
        _release(process)
    opened = int(ready["connections"])
    return {
        "connections": opened,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round((after - before) / opened, 1) if opened else None,
        "setup_s": ready["setup_s"],
        "errors": ready["errors"],
        "first_error": ready["first_error"],
    }
