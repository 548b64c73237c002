"""The scenarios, and the servers each one runs against; every result is one flat dict (a JSON line)."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .cpu_quota import CpuQuota
from .generator import Generator, Load, Result, Storm, idle_connections, reconnect_storm, run_load
from .servers import (
    QUIET_TIMEOUT,
    Redis,
    Server,
    Target,
    log_problems,
    new_secret,
    rss_kib,
    start_target,
    stop,
    wait_quiet,
)

WARM_CONNECTIONS = 50  # opened and closed before the memory baseline, so one-time costs are not counted
QUIET_CONNECTIONS = 20  # in cluster-3, the third instance's clients: one quiet room, nobody sending

# In the order they run against one server: memory on a fresh process, before load has grown its heap.
SINGLE = ("memory", "connections", "reconnect", "throughput", "reactions", "rate", "rooms-rate", "rooms-max")
OURS_ONLY = frozenset({"reactions"})  # the reference has no reactions
SCENARIOS = (*SINGLE, "cluster")
CLUSTER_SIZES = (1, 2, 3)  # instances in the cluster scenario's runs; the third holds only a quiet room


@dataclass(frozen=True)
class Plan:
    """What to run; the defaults take about five minutes with the reference."""

    subscribers: int = 200
    inflight: int = 64
    rate: float = 200.0
    rooms: int = 1000
    room_users: int = 2
    room_rate: float = 1.0
    room_inflight: int = 1
    idle: int = 1000
    idle_users: str = "shared"
    connections: int = 10_000
    storm: int = 10_000  # clients of the reconnect storm
    storm_room: int = 10  # of them per room
    storm_missed: int = 1  # messages each room gets while they are away
    duration: float = 10.0
    warmup: float = 2.0
    settle: float = 2.0  # after connections open or close, before reading RSS
    generator: Generator = field(default_factory=Generator)


@dataclass(frozen=True)
class Setup:
    """Where one target runs: `redis` (if any) is the Redis its instances can share;
    `instance_cpu`, if set, the cores each instance may use (a CPU quota, see cpu_quota.py);
    `webhooks` how our server's webhooks run (off, answering, down) and `webhook_url` where to;
    `profile_dir`, if set, where py-spy's samples of our server during each load's window go."""

    target: Target
    log_dir: Path
    redis: Redis | None
    instance_cpu: float | None = None
    webhooks: str = "off"
    webhook_url: str | None = None
    profile_dir: Path | None = None


def load_of(scenario: str, plan: Plan) -> Load:
    """The load a load scenario puts on the server(s)."""
    everyone = plan.room_users  # in the rooms scenarios every user sends
    return {
        "throughput": Load(1, plan.subscribers, 1, inflight=plan.inflight),
        "reactions": Load(1, plan.subscribers, 1, inflight=plan.inflight, reactions=True),
        "rate": Load(1, plan.subscribers, 1, rate=plan.rate),
        "rooms-rate": Load(plan.rooms, plan.room_users, everyone, rate=plan.room_rate),
        "rooms-max": Load(plan.rooms, plan.room_users, everyone, inflight=plan.room_inflight),
        "cluster": Load(plan.rooms, plan.room_users, everyone, inflight=plan.room_inflight),
    }[scenario]


@dataclass(frozen=True)
class Deployment:
    """The running instances of one target, and the Redis they share if any."""

    servers: list[Server]
    redis: Redis | None

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]


def run_target(setup: Setup, plan: Plan, chosen: list[str], *, redis_mode: bool) -> Iterator[Result]:
    """The chosen scenarios against `setup.target`, one result each as it is done ("cluster":
    one with one instance, then one with two). `redis_mode`: the single-instance scenarios use Redis too.
    A scenario that fails (or whose server does not start) is reported on stderr and yields nothing.
    "reactions" (ours only) also carries `vs_message_only`: its deliveries per second over those
    of "throughput" in the same run."""
    single = single_scenarios(setup.target, chosen)
    if single:
        try:
            with _running(setup, "scenarios", 1, redis_mode) as deployment:
                done: dict[str, Result] = {}
                for name in single:
                    result = _attempt(setup, name, partial(_single, setup, deployment, name, plan))
                    if result:
                        done[name] = result
                        if name == "reactions" and done.get("throughput", {}).get("deliveries_per_s"):
                            ratio = result["deliveries_per_s"] / done["throughput"]["deliveries_per_s"]
                            result["vs_message_only"] = round(ratio, 2)
                        yield result
        except RuntimeError as error:
            print(f"  {setup.target}: {error}", file=sys.stderr)
    if "cluster" in chosen:
        yield from _cluster(setup, plan)


def single_scenarios(target: Target, chosen: list[str]) -> list[str]:
    """The chosen single-instance scenarios that `target` can run, in their order."""
    return [name for name in SINGLE if name in chosen and (target == "ours" or name not in OURS_ONLY)]


def _attempt(setup: Setup, name: str, run: Callable[[], Result]) -> Result | None:
    """One broken scenario should not cost the others: its error is printed and it yields nothing."""
    print(f"  {setup.target}: {name} ...", file=sys.stderr, flush=True)
    try:
        return run()
    except RuntimeError as error:
        print(f"  {setup.target}: {name} failed: {error}", file=sys.stderr)
        return None


def _tagged(setup: Setup, scenario: str, deployment: Deployment, result: Result) -> Result:
    tags: Result = {"scenario": scenario, "server": setup.target, "redis": deployment.redis is not None,
                    "instances": len(deployment.servers)}
    if setup.instance_cpu:
        tags["instance_cpu"] = setup.instance_cpu
    if setup.target == "ours":
        tags["webhooks"] = setup.webhooks
    return {**tags, **result}


def _single(setup: Setup, deployment: Deployment, name: str, plan: Plan) -> Result:
    _settle(deployment.servers)
    if name == "memory":
        result = _memory(setup, deployment.servers[0], plan)
    elif name == "connections":
        result = _connections(setup, deployment.servers[0], plan)
    elif name == "reconnect":
        server = deployment.servers[0]
        result = reconnect_storm(setup.target, server.url, Storm(plan.storm, plan.storm_room, plan.storm_missed),
                                 plan.generator, _room_prefix("reconnect"), server=server.pid,
                                 profile_to=_profile_to(setup, deployment, "reconnect"))
    else:
        result = _load(setup, deployment, name, plan)
    return _tagged(setup, name, deployment, result)


def _cluster(setup: Setup, plan: Plan) -> Iterator[Result]:
    """The rooms-max load on one instance, then on two sharing the same Redis, then on the same
    two with a third instance that holds only a quiet room. Results after the first carry
    `scaling`, their deliveries per second over the first's; each carries the CPU per delivery
    of each busy instance, and the third run the quiet instance's CPU."""
    first: Result | None = None
    for instances in CLUSTER_SIZES:
        result = _attempt(setup, f"cluster-{instances}", partial(_cluster_run, setup, instances, plan))
        if result is None:
            continue
        if first is None:
            first = result
        elif first["deliveries_per_s"]:
            result["scaling"] = round(result["deliveries_per_s"] / first["deliveries_per_s"], 2)
        yield result


def _cluster_run(setup: Setup, instances: int, plan: Plan) -> Result:
    name = f"cluster-{instances}"
    busy = min(instances, 2)
    with _running(setup, name, instances, True) as deployment:
        quiet = [server.url for server in deployment.servers[busy:]]
        with idle_connections(setup.target, quiet, QUIET_CONNECTIONS * len(quiet), plan.generator,
                              _room_prefix("quiet"), plan.idle_users) if quiet else nullcontext():
            result = _load(setup, deployment, "cluster", plan, busy=busy)
    each = result["server_cpu_percent_each"]
    # rooms are spread evenly over the busy instances, so each delivers an equal share
    share = result["deliveries_per_s"] / busy
    result["cpu_us_per_delivery_each"] = [round(cpu * 1e4 / share, 2) if share else None for cpu in each[:busy]]
    if quiet:
        result["quiet_cpu_percent"] = each[busy]
        result["quiet_vs_busy"] = round(each[busy] / max(each[:busy]), 3) if max(each[:busy]) else None
    return _tagged(setup, name, deployment, result)


def _load(setup: Setup, deployment: Deployment, scenario: str, plan: Plan, *, busy: int | None = None) -> Result:
    """The scenario's load on the first `busy` instances (all by default); CPU is measured on all."""
    load = load_of(scenario, plan)
    redis = deployment.redis.pid if deployment.redis else None  # None too for a Redis the bench did not start
    run = f"cluster-{len(deployment.servers)}" if scenario == "cluster" else scenario
    result = run_load(setup.target, deployment.urls[:busy], load, plan.generator, _room_prefix(scenario),
                      warmup=plan.warmup, duration=plan.duration,
                      servers=[server.pid for server in deployment.servers], redis=redis,
                      profile_to=_profile_to(setup, deployment, run))
    shape: Result = {"rooms": load.rooms, "members_per_room": load.members, "senders_per_room": load.senders,
                     "inflight_per_sender": load.inflight, "rate_per_sender": load.rate,
                     "duration_s": plan.duration, "client": plan.generator.client, "deflate": plan.generator.deflate}
    if len(deployment.servers[:busy]) > 1:
        shape["layout"] = plan.generator.layout
    return {**shape, **result}


def _profile_to(setup: Setup, deployment: Deployment, run: str) -> Path | None:
    """Where py-spy's samples of our server during `run` go, with `--profile`."""
    if setup.profile_dir is None or setup.target != "ours":
        return None
    return setup.profile_dir / f"{run}-{'redis' if deployment.redis else 'embedded'}"


def _memory(setup: Setup, server: Server, plan: Plan) -> Result:
    """Server RSS growth per idle joined connection: (RSS with C open - RSS before) / C."""
    urls = [server.url]
    with idle_connections(setup.target, urls, WARM_CONNECTIONS, plan.generator, _room_prefix("warm"), plan.idle_users):
        pass
    time.sleep(plan.settle)
    before = rss_kib(server.pid)
    with idle_connections(setup.target, urls, plan.idle, plan.generator, _room_prefix("memory"),
                          plan.idle_users) as ready:
        time.sleep(plan.settle)
        after = rss_kib(server.pid)
    opened = int(ready["connections"])
    return {
        **ready,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round((after - before) / opened, 1) if opened else None,
    }


def _connections(setup: Setup, server: Server, plan: Plan) -> Result:
    """How fast C idle connections open and join, and whether any fails."""
    with idle_connections(setup.target, [server.url], plan.connections, plan.generator, _room_prefix("connections"),
                          plan.idle_users) as ready:
        return {"requested": plan.connections, **ready, "server_rss_kib": rss_kib(server.pid)}


def _room_prefix(scenario: str) -> str:
    """Unique per run, so that runs on one Redis never share a room."""
    return f"{scenario}-{secrets.token_hex(3)}"


@contextmanager
def _running(setup: Setup, purpose: str, instances: int, on_redis: bool) -> Iterator[Deployment]:
    """`instances` of the target (sharing one secret and, if `on_redis`, the Redis); afterwards
    stopped, with a warning about anything odd in their exit or their logs."""
    redis = setup.redis if on_redis else None
    if on_redis and redis is None:
        raise RuntimeError("this scenario needs Redis")
    secret = new_secret()
    servers: list[Server] = []
    quotas: list[CpuQuota] = []
    try:
        for index in range(instances):
            label = f"{setup.target}-{purpose}-{index + 1}"
            servers.append(start_target(setup.target, setup.log_dir, label, redis.url if redis else None, secret,
                                        setup.webhook_url))
            if setup.instance_cpu:
                quotas.append(CpuQuota(servers[-1].pid, setup.instance_cpu))
        yield Deployment(servers, redis)
        _settle(servers)  # a SIGTERM amid the clients' disconnects is a separate test, not this one's
    finally:
        for server in servers:
            _stop(server)
        for quota in quotas:
            quota.release()


def _settle(servers: list[Server]) -> None:
    for server in servers:
        if not wait_quiet(server.pid):
            print(f"  {server.name}: still busy {QUIET_TIMEOUT:.0f} s after the last load", file=sys.stderr)


def _stop(server: Server) -> None:
    code = stop(server)
    if code != 0:
        print(f"  {server.name}: " + ("killed: it did not stop on SIGTERM" if code is None else f"exit code {code}"),
              file=sys.stderr)
    problems = log_problems(server)
    if problems:
        print(f"  {server.name}: suspicious lines in {server.log_path}:", file=sys.stderr)
        for line in problems:
            print(f"    {line}", file=sys.stderr)
