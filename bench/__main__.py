"""`python -m bench`: run the scenarios against our server (and the Node reference) and print a table.

Each server runs alone, on a free loopback port, while the generator (bench/load.js) loads it, so the
two never share the machine's two cores with each other. Order per server: memory first (on a fresh
process, before load has grown its heap), then full throughput, then the fixed rate.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from .report import markdown
from .scenarios import Plan, Result, ensure_node_modules, measure_memory, run_load
from .servers import QUIET_TIMEOUT, Server, log_problems, start_ours, start_reference, stop, wait_quiet

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = REPO.parent / "shared" / "reference" / "node-socketio"


def parse_args(argv: list[str]) -> argparse.Namespace:
    defaults = Plan()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--with-reference", action="store_true", help="also run the Node reference server")
    parser.add_argument("--reference-dir", type=Path, default=DEFAULT_REFERENCE, help="where server.js lives")
    parser.add_argument("--subscribers", type=int, default=defaults.subscribers, help="sockets in the room")
    parser.add_argument("--inflight", type=int, default=defaults.inflight, help="unacknowledged messages at once")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="measured seconds per load")
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="unmeasured seconds before")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="messages per second, fixed-rate load")
    parser.add_argument("--idle", type=int, default=defaults.idle, help="idle connections for the memory figure")
    parser.add_argument("--idle-users", choices=["shared", "distinct"], default=defaults.idle_users,
                        help="one user for all idle connections, or one user each (adds O(n^2) presence)")
    parser.add_argument("--client", choices=["lean", "official"], default=defaults.client,
                        help="subscribers on the lean client (cheap) or on socket.io-client")
    parser.add_argument("--no-deflate", action="store_true", help="clients do not offer permessage-deflate")
    parser.add_argument("--only", choices=["memory", "throughput", "rate"], action="append",
                        help="run only these scenarios (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    return parser.parse_args(argv)


def plan_from(args: argparse.Namespace) -> Plan:
    return Plan(subscribers=args.subscribers, inflight=args.inflight, duration=args.duration, warmup=args.warmup,
                rate=args.rate, idle=args.idle, idle_users=args.idle_users, client=args.client,
                deflate=not args.no_deflate)


def run_scenarios(server: Server, plan: Plan, only: list[str] | None) -> dict[str, Result]:
    """The chosen scenarios against one running server, in the order that keeps them fair."""
    results: dict[str, Result] = {}
    for name in ("memory", "throughput", "rate"):
        if only and name not in only:
            continue
        print(f"  {server.target}: {name} ...", file=sys.stderr, flush=True)
        _settle(server)
        try:
            results[name] = measure_memory(server, plan) if name == "memory" else run_load(server, plan, name)
        except RuntimeError as error:  # one broken scenario should not cost the others
            print(f"  {server.target}: {name} failed: {error}", file=sys.stderr)
    return results


def _settle(server: Server) -> None:
    if not wait_quiet(server.pid):
        print(f"  {server.target}: still busy {QUIET_TIMEOUT:.0f} s after the last load", file=sys.stderr)


def bench_target(server: Server, plan: Plan, only: list[str] | None) -> dict[str, Result]:
    """Run the scenarios, stop the server, and warn about anything odd in its exit or its log."""
    try:
        results = run_scenarios(server, plan, only)
        _settle(server)  # a SIGTERM amid the clients' disconnects is a separate test, not this one's
    finally:
        code = stop(server)
    if code != 0:
        print(f"  {server.target}: " + ("killed: it did not stop on SIGTERM" if code is None else f"exit code {code}"),
              file=sys.stderr)
    problems = log_problems(server)
    if problems:
        print(f"  {server.target}: suspicious lines in {server.log_path}:", file=sys.stderr)
        for line in problems:
            print(f"    {line}", file=sys.stderr)
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    plan = plan_from(args)
    ensure_node_modules()
    log_dir = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    print(f"server logs in {log_dir}", file=sys.stderr)
    results = {"ours": bench_target(start_ours(REPO, log_dir), plan, args.only)}
    if args.with_reference:
        results["reference"] = bench_target(start_reference(args.reference_dir, log_dir), plan, args.only)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    command = shlex.join(["python", "-m", "bench", *argv])
    print(markdown(results, plan, command))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
