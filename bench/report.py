"""The results: one JSON line per run, and one Markdown table for all scenarios, ours beside the
reference, ready for README.md."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .generator import Result
from .scenarios import Plan

NONE = "n/a"  # a figure a scenario did not produce
JSON_PREFIX = "BENCH "
Cell = Callable[[Result], str]
Value = Callable[[Result], float | None]


def json_line(result: Result) -> str:
    """`BENCH {...}`: one run (scenario + server) for scripts; the table is for people."""
    return JSON_PREFIX + json.dumps(result, separators=(",", ":"))


def _per_second(key: str) -> Cell:
    """The figure, and a warning when the generator was saturated and may have been the limit."""
    def cell(result: Result) -> str:
        text = f"{result[key]:,.0f}"
        return f"{text} (generator {result['generator_cpu_percent']:.0f} %)" if result["generator_saturated"] else text
    return cell


def _latency(result: Result) -> str:
    latency = result["latency_ms"]
    if not latency["samples"]:
        return NONE
    return " / ".join(f"{latency[key]:,.1f}" for key in ("p50", "p90", "p99", "max"))


def _plain(key: str, digits: int = 1, unit: str = "") -> Cell:
    return lambda result: NONE if result.get(key) is None else f"{result[key]:,.{digits}f}{unit}"


def _value(key: str) -> Value:
    return lambda result: result.get(key)


def _first_value(key: str) -> Value:
    return lambda result: result[key][0] if result.get(key) else None


def _top_value(key: str) -> Value:
    return lambda result: max(value for value in result[key] if value is not None) if result.get(key) else None


def _first(key: str) -> Cell:
    return lambda result: NONE if (value := _first_value(key)(result)) is None else f"{value:,.1f}"


def _top(key: str) -> Cell:
    return lambda result: NONE if (value := _top_value(key)(result)) is None else f"{value:,.1f}"


def _pair(first: str, second: str) -> Cell:
    return lambda result: f"{result[first]:,} / {result[second]:,}"


def _mib_pair(first: str, second: str) -> Cell:
    return lambda result: f"{result[first] / 1024:,.0f} / {result[second] / 1024:,.0f}"


def _p99(result: Result) -> float | None:
    p99: float | None = result["latency_ms"]["p99"]
    return p99


@dataclass(frozen=True)
class Row:
    """One line of the table: a label, the scenario it reads, how to show it, what the ratio compares."""

    label: str
    scenario: str
    cell: Cell
    value: Value | None


def _rows(plan: Plan) -> list[Row]:
    one = f"{plan.subscribers} subscribers, {plan.inflight} in flight"
    rate = f"{plan.rate:g} msg/s to {plan.subscribers} subscribers"
    rooms = f"{plan.rooms:,} rooms of {plan.room_users}"
    rooms_rate = f"{rooms}, {plan.room_rate:g} msg/s per user"
    rooms_max = f"{rooms}, {plan.room_inflight} in flight per user"
    deliveries, latency = _per_second("deliveries_per_s"), "Latency p50 / p90 / p99 / max, ms"
    return [
        Row(f"Deliveries per second ({one})", "throughput", deliveries, _value("deliveries_per_s")),
        Row(f"Messages per second ({one})", "throughput", _per_second("messages_per_s"), _value("messages_per_s")),
        Row(f"{latency} ({one})", "throughput", _latency, _p99),
        Row(f"Server CPU, % of one core ({one})", "throughput", _plain("server_cpu_percent"), None),
        Row(f"Generator CPU, % of one core, busiest process ({one})", "throughput",
            _plain("generator_cpu_percent"), None),
        Row(f"Deliveries per second, messages and one reaction each ({one})", "reactions", deliveries,
            _value("deliveries_per_s")),
        Row(f"… of them `message_updated` ({one})", "reactions", _per_second("updates_per_s"),
            _value("updates_per_s")),
        Row(f"{latency}, messages amid reactions ({one})", "reactions", _latency, _p99),
        Row("Deliveries with reactions ÷ message-only deliveries (the throughput row)", "reactions",
            _plain("vs_message_only", 2, "x"), None),
        Row(f"Deliveries per second ({rate})", "rate", deliveries, _value("deliveries_per_s")),
        Row(f"{latency} ({rate})", "rate", _latency, _p99),
        Row(f"Deliveries per second ({rooms_rate})", "rooms-rate", deliveries, _value("deliveries_per_s")),
        Row(f"{latency} ({rooms_rate})", "rooms-rate", _latency, _p99),
        Row(f"Deliveries per second ({rooms_max})", "rooms-max", deliveries, _value("deliveries_per_s")),
        Row(f"{latency} ({rooms_max})", "rooms-max", _latency, _p99),
        Row(f"Deliveries per second, 1 instance on Redis ({rooms_max})", "cluster-1", deliveries,
            _value("deliveries_per_s")),
        Row(f"Deliveries per second, 2 instances on one Redis ({rooms_max})", "cluster-2", deliveries,
            _value("deliveries_per_s")),
        Row("Scaling: 2 instances ÷ 1 instance", "cluster-2", _plain("scaling", 2, "x"), _value("scaling")),
        Row("Server CPU per delivery, µs: 1 instance", "cluster-1", _first("cpu_us_per_delivery_each"),
            _first_value("cpu_us_per_delivery_each")),
        Row("Server CPU per delivery, µs, busiest of 2 instances", "cluster-2", _top("cpu_us_per_delivery_each"),
            _top_value("cpu_us_per_delivery_each")),
        Row("Server CPU per delivery, µs, busiest of the 2 busy instances with a 3rd quiet one", "cluster-3",
            _top("cpu_us_per_delivery_each"), _top_value("cpu_us_per_delivery_each")),
        Row(f"CPU of a 3rd instance holding only a quiet room, % of one core (busy ones: {rooms_max})", "cluster-3",
            _plain("quiet_cpu_percent"), _value("quiet_cpu_percent")),
        Row("Quiet instance's CPU ÷ the busiest instance's", "cluster-3", _plain("quiet_vs_busy", 3),
            _value("quiet_vs_busy")),
        Row(f"Connections opened per second ({plan.connections:,} idle)", "connections", _plain("connect_per_s", 0),
            _value("connect_per_s")),
        Row(f"Connections open ({plan.connections:,} requested)", "connections", _plain("connections", 0), None),
        Row(f"Reconnect storm: seconds until all {plan.storm:,} clients rejoined (all dropped at once)", "reconnect",
            _plain("rejoin_s", 2), _value("rejoin_s")),
        Row("… clients that gave up after their retries / retries", "reconnect", _pair("refused", "retries"), None),
        Row(f"… messages missed while away ({plan.storm_missed} per room): recovered / expected", "reconnect",
            _pair("recovered", "expected"), None),
        Row("… server memory before / at its peak, MiB", "reconnect", _mib_pair("rss_before_kib", "rss_peak_kib"),
            None),
        Row(f"Memory per idle connection ({plan.idle:,} joined)", "memory", _plain("kib_per_connection", 1, " KiB"),
            _value("kib_per_connection")),
    ]


def _ratio(ours: float | None, reference: float | None) -> str:
    return f"{ours / reference:.2f}x" if ours is not None and reference else NONE


def _sums(*keys: str) -> Callable[[Sequence[Result]], str]:
    """The counts of these keys, each summed over the scenarios that report it, joined by " / "."""
    def total(results: Sequence[Result], key: str) -> str:
        counts = [result[key] for result in results if result.get(key) is not None]
        return f"{sum(counts):,}" if counts else NONE
    return lambda results: " / ".join(total(results, key) for key in keys)


def _errors(results: Sequence[Result]) -> str:
    """Errors summed over all scenarios, with the kinds that occurred."""
    kinds: dict[str, int] = {}
    for result in results:
        for kind, count in result["errors"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    total = sum(kinds.values())
    detail = ", ".join(f"{kind} {count}" for kind, count in kinds.items() if count)
    return f"{total} ({detail})" if total else "0"


TOTALS: list[tuple[str, Callable[[Sequence[Result]], str]]] = [
    ("Missing / out of order / duplicates, all scenarios", _sums("missing", "out_of_order", "duplicates")),
    ("Missing `message_updated` (reactions)", _sums("missing_updates")),
    ("Out of seq order (ours only; the protocol allows it across senders), all scenarios", _sums("seq_out_of_order")),
    ("Errors, all scenarios", _errors),
]


def markdown(results: Sequence[Result], plan: Plan, redis_mode: bool, command: str) -> str:
    """Columns: each server that ran, and ours ÷ reference when both did; rows a scenario did not
    produce are left out. A line under the table says how it was measured."""
    targets = [target for target in ("ours", "reference") if any(result["server"] == target for result in results)]
    both = len(targets) == 2
    by = {(result["server"], result["scenario"]): result for result in results}
    header = ["", *targets, *(["ours ÷ reference"] if both else [])]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for row in _rows(plan):
        found = [by.get((target, row.scenario)) for target in targets]
        if not any(found):
            continue
        cells = [row.cell(result) if result else NONE for result in found]
        if both:
            values = [row.value(result) if row.value and result else None for result in found]
            cells.append(_ratio(*values) if row.value else "")
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    for label, total in TOTALS:
        cells = [total([result for result in results if result["server"] == target]) for target in targets]
        if all(cell == NONE for cell in cells):
            continue
        lines.append(f"| {label} | " + " | ".join(cells) + (" | |" if both else " |"))
    deflate = "offered" if plan.generator.deflate else "not offered"
    mode = "on one Redis (ours: REDIS_URL, reference: Redis adapter)" if redis_mode else "alone (ours: embedded)"
    webhooks = next((result["webhooks"] for result in results if result.get("webhooks", "off") != "off"), None)
    if webhooks:
        receiver = "that answers at once" if webhooks == "answering" else "that is down"
        mode += f"; ours posting webhook events to a receiver {receiver}"
    quota = next((result["instance_cpu"] for result in results if "instance_cpu" in result), None)
    if quota:
        mode += f"; each server instance held to {quota:g} cores (CPU quota)"
    lines += ["", (
        f"{os.cpu_count()} cores, Python {platform.python_version()}; single-instance scenarios {mode}; measured "
        f"window {plan.duration:g} s after {plan.warmup:g} s warm-up; generator: {plan.generator.processes} "
        f"process(es), {plan.generator.client} clients, permessage-deflate {deflate}. `{command}`"
    )]
    return "\n".join(lines)
