"""Drive bench/load.js: one or several generator processes, steered over stdin/stdout (the protocol
is in load.js's header), and their reports merged into one result."""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import latency, profiling
from .servers import Target, cpu_seconds, rss_kib

LOAD_JS = Path(__file__).resolve().parent / "load.js"
# load.js gives up on its own well before these; they only keep a hung process from hanging the bench.
SETUP_TIMEOUT = 600.0
STEP_TIMEOUT = 60.0
SATURATED_PERCENT = 90.0  # a generator process above this share of a core may be the bottleneck
RSS_SAMPLE_S = 0.05  # how often the reconnect storm reads the server's memory

Result = dict[str, Any]


@dataclass(frozen=True)
class Load:
    """`rooms` rooms of `members` members, the first `senders` of each sending with `inflight`
    messages unacknowledged (closed loop) or at `rate` messages per second (open loop); with
    `reactions`, each sender reacts to each of its messages before it counts as done."""

    rooms: int
    members: int
    senders: int
    inflight: int | None = None
    rate: float | None = None
    reactions: bool = False


@dataclass(frozen=True)
class Generator:
    """How the load is generated: how many processes share the members, and the clients' kind."""

    processes: int = 1
    client: str = "lean"
    deflate: bool = True
    layout: str = "rooms"  # with several instances: a room's members on one ("rooms") or on all ("spread")


class Worker:
    """One load.js process: JSON commands in on stdin, JSON events out on stdout."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buffer = b""

    def tell(self, command: Mapping[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()

    def wait_for(self, event: str, timeout: float) -> Result:
        """The next line that is this event, skipping others; RuntimeError if the process ends first."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(deadline)
            if line.startswith(b"{"):
                message: Result = json.loads(line)
                if message.get("event") == event:
                    return message

    def _readline(self, deadline: float) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise RuntimeError("load.js did not answer in time")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"load.js exited (code {self.process.wait()}); its error is above")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def close(self) -> None:
        """Closing stdin tells load.js to close its sockets and exit."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextmanager
def _workers(target: Target, urls: Sequence[str], generator: Generator, *options: str) -> Iterator[list[Worker]]:
    common = ["node", str(LOAD_JS), "--urls", ",".join(urls), "--target", target, "--client", generator.client,
              "--layout", generator.layout, "--processes", str(generator.processes), *options]
    if not generator.deflate:
        common.append("--no-deflate")
    workers: list[Worker] = []
    try:
        for index in range(generator.processes):
            workers.append(Worker([*common, "--process", str(index)]))
        yield workers
    finally:
        for worker in workers:
            worker.close()


def run_load(target: Target, urls: Sequence[str], load: Load, generator: Generator, room_prefix: str, *,
             warmup: float, duration: float, servers: Sequence[int], redis: int | None,
             profile_to: Path | None = None) -> Result:
    """Connect the members, send for `warmup` + `duration` seconds, measure the last `duration`;
    the merged counts, with the CPU share of the `servers` pids (summed, and each) and of `redis`.
    With `profile_to`, py-spy samples the servers during the measured window (profiling.start)."""
    shape = ["--inflight", str(load.inflight)] if load.inflight is not None else ["--rate", str(load.rate)]
    options = ["--mode", "load", "--room-prefix", room_prefix, "--rooms", str(load.rooms),
               "--members", str(load.members), "--senders", str(load.senders), "--users", "distinct", *shape,
               *(["--reactions"] if load.reactions else [])]
    with _workers(target, urls, generator, *options) as workers:
        ready = [worker.wait_for("ready", SETUP_TIMEOUT) for worker in workers]
        start = time.time() + warmup
        for worker in workers:
            worker.tell({"cmd": "start", "start": start * 1000, "end": (start + duration) * 1000})
        cpu = _cpu_during(start, duration, servers, redis, profile_to)
        sent = [worker.wait_for("sent", STEP_TIMEOUT) for worker in workers]
        accepted: Counter[str] = Counter()
        reacted: Counter[str] = Counter()
        for event in sent:
            accepted.update(event["accepted"])
            reacted.update(event["reacted"])
        for worker in workers:
            worker.tell({"cmd": "expect", "accepted": accepted, "reacted": reacted})
        results = [worker.wait_for("result", STEP_TIMEOUT) for worker in workers]
    merged = {**_merge(ready, results, duration), **cpu}
    if load.reactions:
        merged |= _merge_updates(results, duration)
    if target == "reference":
        merged["seq_out_of_order"] = None  # it numbers no messages
    return merged


def _cpu_during(start: float, duration: float, servers: Sequence[int], redis: int | None,
                profile_to: Path | None) -> Result:
    """Sleeps through the window (from `start`, a time.time()) and returns the CPU share of the
    processes during it, in % of one core; samples the servers into `profile_to` if given."""
    pids = [*servers, *([redis] if redis else [])]
    time.sleep(max(0.0, start - time.time()))
    samplers = profiling.start(servers, duration, profile_to) if profile_to else []
    before = [cpu_seconds(pid) for pid in pids]
    began = time.monotonic()
    time.sleep(max(0.0, start + duration - time.time()))
    elapsed = time.monotonic() - began
    profiling.finish(samplers)
    shares = [100 * (cpu_seconds(pid) - used) / elapsed for pid, used in zip(pids, before, strict=True)]
    return {
        "server_cpu_percent": round(sum(shares[: len(servers)]), 1),
        "server_cpu_percent_each": [round(share, 1) for share in shares[: len(servers)]],
        "redis_cpu_percent": round(shares[-1], 1) if redis else None,
    }


def _merge(ready: list[Result], results: list[Result], duration: float) -> Result:
    generator_cpu = max(result["generator_cpu_percent"] for result in results)
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result["errors"])
    histogram = latency.merge(result["latency"]["buckets"] for result in results)
    return {
        "connections": sum(event["connections"] for event in ready),
        "setup_s": max(event["connect_s"] for event in ready),
        "deliveries_per_s": round(sum(result["deliveries"] for result in results) / duration, 1),
        "messages_per_s": round(sum(result["acked"] for result in results) / duration, 1),
        "latency_ms": latency.summary(histogram, max(result["latency"]["max"] for result in results)),
        "expected_deliveries": sum(result["expected"] for result in results),
        "missing": sum(result["missing"] for result in results),
        "out_of_order": sum(result["out_of_order"] for result in results),
        "seq_out_of_order": sum(result["seq_out_of_order"] for result in results),
        "duplicates": sum(result["duplicates"] for result in results),
        "errors": dict(errors),
        "first_error": next((result["first_error"] for result in results if result["first_error"]), None),
        "generator_processes": len(results),
        "generator_cpu_percent": generator_cpu,  # the busiest process
        "generator_saturated": generator_cpu > SATURATED_PERCENT,
    }


def _merge_updates(results: list[Result], duration: float) -> Result:
    return {
        "updates_per_s": round(sum(result["updates"] for result in results) / duration, 1),
        "expected_updates": sum(result["expected_updates"] for result in results),
        "missing_updates": sum(result["missing_updates"] for result in results),
    }


@contextmanager
def idle_connections(target: Target, urls: Sequence[str], connections: int, generator: Generator, room: str,
                     users: str) -> Iterator[Result]:
    """Holds `connections` sockets joined to `room` while the block runs; yields how opening went."""
    options = ["--mode", "idle", "--room-prefix", room, "--rooms", "1", "--members", str(connections),
               "--senders", "0", "--users", users]
    with _workers(target, urls, generator, *options) as workers:
        ready = [worker.wait_for("ready", SETUP_TIMEOUT) for worker in workers]
        errors: Counter[str] = Counter()
        for event in ready:
            errors.update(event["errors"])
        opened = sum(event["connections"] for event in ready)
        seconds = max(event["connect_s"] for event in ready)
        yield {
            "connections": opened,
            "setup_s": seconds,
            "connect_per_s": round(opened / seconds, 1) if seconds else None,
            "errors": dict(errors),
            "first_error": next((event["first_error"] for event in ready if event["first_error"]), None),
        }


@dataclass(frozen=True)
class Storm:
    """A reconnect storm: `clients` joined clients in rooms of `room_size`, each room with one more
    member who stays and sends `missed` messages while the others are away."""

    clients: int
    room_size: int
    missed: int

    @property
    def rooms(self) -> int:
        return -(-self.clients // self.room_size)  # the last room may hold fewer


def reconnect_storm(target: Target, url: str, storm: Storm, generator: Generator, room_prefix: str, *,
                    server: int, profile_to: Path | None = None) -> Result:
    """Drop every client at once, send the missed messages, bring every client back at once:
    the time until all rejoined, retries and refusals, whether each recovered exactly what it
    missed, and the `server` pid's memory before and at its peak during the storm (sampled by
    py-spy into `profile_to`, if given)."""
    options = ["--mode", "storm", "--room-prefix", room_prefix, "--rooms", str(storm.rooms),
               "--members", str(storm.room_size + 1), "--senders", "1", "--users", "distinct",
               "--missed", str(storm.missed)]
    with _workers(target, [url], generator, *options) as workers:
        ready = [worker.wait_for("ready", SETUP_TIMEOUT) for worker in workers]
        before = rss_kib(server)
        with _peak_rss(server) as peak:
            samplers = profiling.start([server], None, profile_to) if profile_to else []
            for worker in workers:
                worker.tell({"cmd": "storm"})
            accepted: Counter[str] = Counter()
            for worker in workers:
                accepted.update(worker.wait_for("missed", SETUP_TIMEOUT)["accepted"])
            for worker in workers:
                worker.tell({"cmd": "rejoin", "accepted": accepted})
            results = [worker.wait_for("result", SETUP_TIMEOUT) for worker in workers]
            profiling.finish(samplers, stop=True)
    errors: Counter[str] = Counter()
    for event in [*ready, *results]:
        errors.update(event["errors"])
    summed = {key: sum(result[key] for result in results)
              for key in ("rejoined", "refused", "retries", "expected", "recovered", "missing", "duplicates",
                          "not_recovered")}
    return {
        "clients": storm.clients, "room_size": storm.room_size, "missed_per_room": storm.missed,
        "connections": sum(event["connections"] for event in ready),
        "setup_s": max(event["connect_s"] for event in ready),
        **summed,
        "rejoin_s": max(result["rejoin_s"] for result in results),  # the slowest process's last client
        "rss_before_kib": before, "rss_peak_kib": peak[0],
        "errors": dict(errors),
        "first_error": next((event["first_error"] for event in [*ready, *results] if event["first_error"]), None),
    }


@contextmanager
def _peak_rss(pid: int) -> Iterator[list[int]]:
    """While the block runs, the highest RSS of `pid` read every RSS_SAMPLE_S, in a one-item list."""
    peak = [rss_kib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(RSS_SAMPLE_S):
            peak[0] = max(peak[0], rss_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], rss_kib(pid))
