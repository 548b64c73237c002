"""The results as a Markdown table, ours beside the reference, ready for README.md."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping

from .scenarios import Plan, Result

TargetResults = Mapping[str, Result]  # scenario name -> result
Row = tuple[str, Callable[[TargetResults], str]]
NONE = "n/a"  # a figure a scenario did not produce


def _number(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def _latency(result: Result | None) -> str:
    if result is None:
        return NONE
    latency = result["latency_ms"]
    if not latency["samples"]:
        return NONE
    return " / ".join(f"{latency[key]:.1f}" for key in ("p50", "p90", "p99", "max"))


def _errors(results: TargetResults) -> str:
    """Total errors over all scenarios, with the kinds that occurred."""
    kinds: dict[str, int] = {}
    for result in results.values():
        for kind, count in result["errors"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    total = sum(kinds.values())
    detail = ", ".join(f"{kind} {count}" for kind, count in kinds.items() if count)
    return f"{total} ({detail})" if total else "0"


def _rows(plan: Plan) -> list[Row]:
    load = f"{plan.subscribers} subscribers, {plan.inflight} in flight"
    rate = f"{plan.rate:g} msg/s to {plan.subscribers} subscribers"

    def get(scenario: str, key: str) -> Callable[[TargetResults], str]:
        return lambda results: _number(results[scenario][key]) if scenario in results else NONE

    def memory(results: TargetResults) -> str:
        per = results["memory"]["kib_per_connection"] if "memory" in results else None
        return NONE if per is None else f"{per:.1f} KiB"

    return [
        (f"Deliveries per second ({load})", get("throughput", "deliveries_per_s")),
        (f"Messages per second ({load})", get("throughput", "messages_per_s")),
        (f"Latency p50 / p90 / p99 / max, ms ({load})", lambda results: _latency(results.get("throughput"))),
        (f"Server CPU, % of one core ({load})", get("throughput", "server_cpu_percent")),
        (f"Generator CPU, % of one core ({load})", get("throughput", "generator_cpu_percent")),
        (f"Deliveries per second ({rate})", get("rate", "deliveries_per_s")),
        (f"Latency p50 / p90 / p99 / max, ms ({rate})", lambda results: _latency(results.get("rate"))),
        (f"Memory per idle connection ({plan.idle} joined)", memory),
        ("Errors, all scenarios", _errors),
    ]


def markdown(results: Mapping[str, TargetResults], plan: Plan, command: str) -> str:
    """One column per target that ran; a line under the table says how it was measured."""
    targets = list(results)
    lines = [
        "| | " + " | ".join(targets) + " |",
        "| --- | " + " | ".join("---:" for _ in targets) + " |",
    ]
    for label, cell in _rows(plan):
        lines.append(f"| {label} | " + " | ".join(cell(results[target]) for target in targets) + " |")
    deflate = "offered" if plan.deflate else "not offered"
    lines.append("")
    lines.append(
        f"{os.cpu_count()} cores, Python {platform.python_version()}, measured window {plan.duration:g} s after "
        f"{plan.warmup:g} s warm-up; generator: {plan.client} subscribers, permessage-deflate {deflate}. "
        f"`{command}`"
    )
    return "\n".join(lines)
