"""Every benchmark scenario at toy scale, against our server and the Node reference: what a user of
`make bench` relies on (every accepted message delivered to every member, in each sender's order,
once; no errors; one JSON line per run with its figures). No timing is asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from bench import cpu_quota, latency
from bench.report import JSON_PREFIX
from bench.scenarios import OURS_ONLY, SINGLE
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the load generator runs on Node.js")

TOY = ["--subscribers", "5", "--inflight", "4", "--rate", "20", "--rooms", "10", "--room-rate", "2",
       "--idle", "20", "--connections", "20", "--storm", "20", "--storm-room", "5", "--duration", "0.5", "--warmup",
       "0.2", "--settle", "0.1"]
SERVERS = ("ours", "reference")
LOADS = ("throughput", "rate", "rooms-rate", "rooms-max")
LOAD_KEYS = {"scenario", "server", "redis", "instances", "connections", "rooms", "members_per_room",
             "deliveries_per_s", "messages_per_s", "latency_ms", "expected_deliveries", "missing", "out_of_order",
             "seq_out_of_order", "duplicates", "errors", "first_error", "generator_processes",
             "generator_cpu_percent", "generator_saturated", "server_cpu_percent", "redis_cpu_percent"}
IDLE_KEYS = {"scenario", "server", "redis", "instances", "connections", "setup_s", "connect_per_s", "errors"}
BENCH_TIMEOUT = 100.0

Result = dict[str, Any]


@dataclass
class Run:
    """One `python -m bench` run: its exit code, its results by (server, scenario), its table."""

    code: int
    results: dict[tuple[str, str], Result]
    table: str
    stderr: str


def run_bench(*args: str) -> Run:
    done = subprocess.run([sys.executable, "-m", "bench", *TOY, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=BENCH_TIMEOUT, check=False)
    lines = done.stdout.splitlines()
    results = [json.loads(line.removeprefix(JSON_PREFIX)) for line in lines if line.startswith(JSON_PREFIX)]
    table = "\n".join(line for line in lines if not line.startswith(JSON_PREFIX))
    return Run(done.returncode, {(result["server"], result["scenario"]): result for result in results}, table,
               done.stderr)


@pytest.fixture(scope="module")
def every_scenario(redis_url: str) -> Run:
    """All scenarios, both servers, alone (cluster: on the tests' Redis)."""
    return run_bench("--redis-url", redis_url)


@pytest.fixture(scope="module")
def on_redis(redis_url: str) -> Run:
    """Load scenarios with the single instance on Redis, the members on socket.io-client and split
    over two generator processes."""
    return run_bench("--redis", "--redis-url", redis_url, "--generator-processes", "2", "--client", "official",
                     "--only", "throughput", "--only", "reactions", "--only", "rooms-max", "--only", "reconnect")


def assert_delivered(result: Result) -> None:
    """Every accepted message reached every member of its room, once, in its sender's order."""
    assert result.keys() >= LOAD_KEYS
    assert result["expected_deliveries"] > 0, result
    assert (result["missing"], result["out_of_order"], result["duplicates"]) == (0, 0, 0), result
    assert sum(result["errors"].values()) == 0, result
    assert result["latency_ms"]["samples"] == result["expected_deliveries"], result


def test_exits_cleanly_with_one_table(every_scenario: Run) -> None:
    assert every_scenario.code == 0, every_scenario.stderr
    assert "| ours | reference | ours ÷ reference |" in every_scenario.table
    assert "Scaling: 2 instances ÷ 1 instance" in every_scenario.table
    assert "| Missing / out of order / duplicates, all scenarios | 0 / 0 / 0 | 0 / 0 / 0 | |" in every_scenario.table
    scenarios = {*SINGLE, "cluster-1", "cluster-2", "cluster-3"}
    assert set(every_scenario.results) == {(server, name) for server in SERVERS for name in scenarios
                                           if server == "ours" or name not in OURS_ONLY}
    assert "| Missing `message_updated` (reactions) | 0 | n/a | |" in every_scenario.table


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("scenario", LOADS)
def test_load_delivers_everything(every_scenario: Run, server: str, scenario: str) -> None:
    result = every_scenario.results[(server, scenario)]
    assert_delivered(result)
    assert (result["redis"], result["instances"], result["generator_processes"]) == (False, 1, 1)


def assert_reacted(result: Result) -> None:
    """Every message of the window was reacted to, and every member received each update once."""
    assert_delivered(result)
    assert result["expected_updates"] == result["expected_deliveries"], result
    assert (result["missing_updates"], result["updates_per_s"] > 0) == (0, True), result
    assert result["deliveries_per_s"] > result["updates_per_s"], result


def test_reactions_at_the_rate_of_messages(every_scenario: Run) -> None:
    result = every_scenario.results[("ours", "reactions")]
    assert_reacted(result)
    assert result["vs_message_only"] > 0
    assert "Deliveries with reactions ÷ message-only deliveries" in every_scenario.table


@pytest.mark.parametrize("server", SERVERS)
def test_idle_connections_all_open(every_scenario: Run, server: str) -> None:
    for scenario in ("memory", "connections"):
        result = every_scenario.results[(server, scenario)]
        assert result.keys() >= IDLE_KEYS
        assert result["connections"] == 20, result
        assert sum(result["errors"].values()) == 0, result
    assert every_scenario.results[(server, "memory")]["kib_per_connection"] is not None


def assert_all_back(result: Result, server: str) -> None:
    """Every client of the storm rejoined, none gave up; on our server each recovered exactly the
    message its room received while it was away."""
    assert (result["rejoined"], result["refused"], sum(result["errors"].values())) == (20, 0, 0), result
    assert result["connections"] == 24, result  # and one staying member per room of 5
    assert result["rss_peak_kib"] >= result["rss_before_kib"] > 0
    recovery = (result["expected"], result["recovered"], result["duplicates"], result["not_recovered"])
    assert recovery == ((20, 20, 0, 0) if server == "ours" else (0, 0, 0, 0)), result


@pytest.mark.parametrize("server", SERVERS)
def test_reconnect_storm_brings_every_client_back(every_scenario: Run, server: str) -> None:
    assert_all_back(every_scenario.results[(server, "reconnect")], server)
    assert "Reconnect storm: seconds until all 20 clients rejoined" in every_scenario.table


@pytest.mark.parametrize("server", SERVERS)
def test_cluster_shares_one_redis(every_scenario: Run, server: str) -> None:
    one, two, three = (every_scenario.results[(server, f"cluster-{n}")] for n in (1, 2, 3))
    for result, instances in ((one, 1), (two, 2), (three, 3)):
        assert_delivered(result)
        assert (result["redis"], result["instances"]) == (True, instances)
        assert len(result["server_cpu_percent_each"]) == instances
        assert len(result["cpu_us_per_delivery_each"]) == min(instances, 2)
    assert two["layout"] == three["layout"] == "rooms"
    assert two["scaling"] > 0 and three["scaling"] > 0
    assert three["quiet_cpu_percent"] is not None and "quiet_cpu_percent" not in two


@pytest.mark.skipif(cpu_quota.unavailable() is not None, reason=f"CPU quotas: {cpu_quota.unavailable()}")
def test_instances_held_to_a_cpu_quota(redis_url: str) -> None:
    """--instance-cpu puts each instance in a cgroup of its own with that quota, and removes
    the cgroups afterwards."""
    run = run_bench("--redis-url", redis_url, "--only", "cluster", "--no-reference", "--instance-cpu", "0.25")
    assert run.code == 0, run.stderr
    for instances in (1, 2, 3):
        result = run.results[("ours", f"cluster-{instances}")]
        assert_delivered(result)
        assert result["instance_cpu"] == 0.25
        assert all(cpu <= 30 for cpu in result["server_cpu_percent_each"]), result  # a quarter of a core, and noise
    assert "each server instance held to 0.25 cores" in run.table
    assert not list(cpu_quota.ROOT.glob("chat-bench-*"))


@pytest.mark.parametrize("server", SERVERS)
def test_redis_mode_two_generator_processes_official_client(on_redis: Run, server: str) -> None:
    assert on_redis.code == 0, on_redis.stderr
    for scenario in ("throughput", "rooms-max"):
        result = on_redis.results[(server, scenario)]
        assert_delivered(result)
        assert (result["redis"], result["generator_processes"], result["client"]) == (True, 2, "official")
    assert_all_back(on_redis.results[(server, "reconnect")], server)
    if server == "ours":
        assert_reacted(on_redis.results[(server, "reactions")])


def test_latency_percentiles_come_from_the_histogram() -> None:
    histogram = latency.merge([{"0": 1, "100": 8}, {"100": 1, "200": 90}])
    assert histogram == Counter({0: 1, 100: 9, 200: 90})
    summary = latency.summary(histogram, 5.5)
    assert summary["p50"] == summary["p90"] == round(latency.BASE_MS * latency.FACTOR**200, 2)
    assert summary["max"] == 5.5
    assert summary["samples"] == 100
    assert latency.percentile(Counter(), 0.5) is None


@pytest.mark.parametrize("webhooks", ["answering", "down"])
def test_ours_posting_webhooks_delivers_everything(webhooks: str) -> None:
    run = run_bench("--no-reference", "--only", "throughput", "--webhooks", webhooks)
    assert run.code == 0, run.stderr
    result = run.results[("ours", "throughput")]
    assert_delivered(result)
    assert result["webhooks"] == webhooks
    assert "posting webhook events to a receiver" in run.table
