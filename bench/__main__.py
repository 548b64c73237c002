"""`python -m bench`: run the scenarios against our server and the Node reference, side by side.

Each server runs alone, on free loopback ports, while the generator (bench/load.js) loads it, so the
two never share the machine's cores with each other. Prints one `BENCH {json}` line per run as it
finishes, then one Markdown table for all of them.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from . import cpu_quota
from .generator import Generator, Result
from .report import json_line, markdown
from .scenarios import CLUSTER_SIZES, SCENARIOS, Plan, Setup, run_target, single_scenarios
from .servers import (
    HOST,
    REFERENCE_DIR,
    TARGETS,
    Redis,
    install_node_modules,
    start_redis,
    start_webhook_receiver,
    stop,
    unanswered_webhook_url,
)

BENCH_DIR = Path(__file__).resolve().parent


def parse_args(argv: list[str]) -> argparse.Namespace:
    plan, generator = Plan(), Generator()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--no-reference", action="store_true", help="run our server only")
    add("--only", choices=SCENARIOS, action="append", help="run only these scenarios (repeatable)")
    add("--redis", action="store_true", help="the single-instance scenarios on Redis too (cluster always is)")
    add("--redis-url", help="use this Redis on 127.0.0.1 instead of starting a redis-server")
    add("--subscribers", type=int, default=plan.subscribers, help="members of the one room (throughput, rate)")
    add("--inflight", type=int, default=plan.inflight, help="unacknowledged messages at once (throughput)")
    add("--rate", type=float, default=plan.rate, help="messages per second (rate)")
    add("--rooms", type=int, default=plan.rooms, help="rooms (rooms-rate, rooms-max, cluster)")
    add("--room-users", type=int, default=plan.room_users, help="users per room, all of them sending")
    add("--room-rate", type=float, default=plan.room_rate, help="messages per second per user (rooms-rate)")
    add("--room-inflight", type=int, default=plan.room_inflight,
        help="unacknowledged messages per user (rooms-max, cluster)")
    add("--cluster-layout", choices=["rooms", "spread"], default=generator.layout,
        help="with two instances: each room's users on one instance, or spread over both")
    add("--idle", type=int, default=plan.idle, help="idle connections for the memory figure")
    add("--connections", type=int, default=plan.connections, help="idle connections to open (connections)")
    add("--storm", type=int, default=plan.storm, help="clients dropped and reconnected at once (reconnect)")
    add("--storm-room", type=int, default=plan.storm_room, help="of them per room (reconnect)")
    add("--storm-missed", type=int, default=plan.storm_missed,
        help="messages each room gets while its clients are away (reconnect)")
    add("--idle-users", choices=["shared", "distinct"], default=plan.idle_users,
        help="one user for all idle connections, or one user each (adds O(n^2) presence)")
    add("--duration", type=float, default=plan.duration, help="measured seconds per load")
    add("--warmup", type=float, default=plan.warmup, help="unmeasured seconds before")
    add("--settle", type=float, default=plan.settle, help="seconds to wait before reading memory")
    add("--generator-processes", type=int, default=generator.processes,
        help="load.js processes sharing the connections (when one saturates a core)")
    add("--client", choices=["lean", "official"], default=generator.client,
        help="connections on the lean client (cheap) or on socket.io-client")
    add("--no-deflate", action="store_true", help="clients do not offer permessage-deflate")
    add("--instance-cpu", type=float, metavar="CORES",
        help="hold each server instance to this many cores (0.5: half a core), as a container's --cpus; "
             "needs root and cgroup v1")
    add("--webhooks", choices=["off", "answering", "down"], default="off",
        help="our server posts webhook events to a receiver that answers at once, or to one that is down")
    add("--profile", type=Path, metavar="DIR",
        help="py-spy samples our server during each load's measured window into DIR/SCENARIO-MODE-N.txt "
             "(read them with: python -m bench.profiling FILE)")
    add("--json", type=Path, help="also write all results to this file, as one JSON list")
    return parser.parse_args(argv)


def plan_from(args: argparse.Namespace) -> Plan:
    generator = Generator(processes=args.generator_processes, client=args.client, deflate=not args.no_deflate,
                          layout=args.cluster_layout)
    return Plan(subscribers=args.subscribers, inflight=args.inflight, rate=args.rate, rooms=args.rooms,
                room_users=args.room_users, room_rate=args.room_rate, room_inflight=args.room_inflight,
                idle=args.idle, idle_users=args.idle_users, connections=args.connections, storm=args.storm,
                storm_room=args.storm_room, storm_missed=args.storm_missed, duration=args.duration,
                warmup=args.warmup, settle=args.settle, generator=generator)


def raise_open_files(connections: int) -> None:
    """Lift the soft limit on open files to the hard one, for us and the processes we start:
    each connection is a descriptor in the generator and another in the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < connections + 1000:
        print(f"warning: at most {hard} open files per process; {connections} connections may fail", file=sys.stderr)


@contextmanager
def redis_for(args: argparse.Namespace, chosen: list[str], log_dir: Path) -> Iterator[Redis | None]:
    """The Redis of this run: the one given, one started here, or none if nothing needs it."""
    if args.redis_url:
        if urlsplit(args.redis_url).hostname not in (HOST, "localhost"):
            raise SystemExit(f"--redis-url must point at {HOST}: the bench loads this machine only")
        yield Redis(args.redis_url, None)
    elif args.redis or "cluster" in chosen:
        if not shutil.which("redis-server"):
            raise SystemExit("redis-server is not installed (apt-get install redis-server); it is needed by "
                             "--redis and the cluster scenario (leave it out with --only)")
        redis, process = start_redis(log_dir)
        try:
            yield redis
        finally:
            stop(process)
    else:
        yield None


@contextmanager
def webhooks_for(mode: str, log_dir: Path) -> Iterator[str | None]:
    """Where our server posts webhook events in this run: nowhere (off), a receiver of the
    bench's own that answers at once, or a port nothing listens at (down)."""
    if mode == "off":
        yield None
    elif mode == "down":
        yield unanswered_webhook_url()
    else:
        url, receiver = start_webhook_receiver(log_dir)
        try:
            yield url
        finally:
            stop(receiver)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.instance_cpu is not None and (reason := cpu_quota.unavailable()):
        raise SystemExit(f"--instance-cpu: {reason}")
    plan = plan_from(args)
    chosen = args.only or list(SCENARIOS)
    targets = [target for target in TARGETS if target == "ours" or not args.no_reference]
    raise_open_files(max(plan.connections, plan.idle, plan.rooms * plan.room_users, plan.storm * 2))
    install_node_modules(BENCH_DIR)
    if "reference" in targets:
        install_node_modules(REFERENCE_DIR)
    log_dir = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    print(f"server logs in {log_dir}", file=sys.stderr)
    results: list[Result] = []
    with redis_for(args, chosen, log_dir) as redis, webhooks_for(args.webhooks, log_dir) as webhook_url:
        for target in targets:
            setup = Setup(target, log_dir, redis, args.instance_cpu, args.webhooks, webhook_url, args.profile)
            for result in run_target(setup, plan, chosen, redis_mode=args.redis):
                print(json_line(result), flush=True)
                results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results, plan, args.redis, shlex.join(["python", "-m", "bench", *argv])))
    cluster_runs = len(CLUSTER_SIZES) if "cluster" in chosen else 0
    expected = sum(len(single_scenarios(target, chosen)) + cluster_runs for target in targets)
    return 0 if len(results) == expected else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
