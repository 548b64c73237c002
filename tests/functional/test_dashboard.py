"""deploy/grafana-dashboard.json: a well-formed Grafana model whose queries only name metrics /metrics prints."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.chat_client import new_room
from tests.conftest import ROOT

DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# The areas the dashboard must cover: at least one query names each of these.
REQUIRED = ["chat_connections", "chat_connects_total", "chat_disconnects_total", "chat_rooms",
            "chat_messages_in_total", "chat_messages_out_total",
            "chat_event_seconds_bucket", "chat_http_seconds_bucket", "chat_errors_total",
            "chat_store_up", "chat_draining", "chat_webhook_attempts_total", "chat_webhook_retries_total",
            "chat_webhook_dropped_total", "chat_webhook_queue_length", "chat_webhook_oldest_age_seconds"]

# PromQL words that look like identifiers but are not metric names (functions are dropped
# because a "(" follows them, grouping labels with their clause).
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "start", "end"}
STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
LABEL_VALUES = re.compile(r"label_values\(\s*(.+?)\s*,\s*\w+\s*\)")


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from walk(panel.get("panels", []))


def exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL query: panel targets, and the series selector of label_values() variables."""
    found = [target["expr"] for panel in walk(dashboard["panels"])
             for target in panel.get("targets", []) if target.get("expr")]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            found.extend(LABEL_VALUES.findall(text) or [text])
    return found


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects, as Prometheus stores them: the sample names
    of the exposition (`chat_event_seconds_bucket`, `chat_messages_in_total`), not the
    family names (`chat_event_seconds`, `chat_messages_in`)."""
    text = STRING.sub('""', expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors and subqueries: [5m], [$__rate_interval]
    text = GROUPING.sub(" ", text)  # by (le, event), on (instance), ...
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables outside the above
    text = re.sub(r"\b\d[\w.]*", " ", text)  # numbers and durations: 0.95, 1e3, 5m
    return {name for name in IDENTIFIER.findall(text) if name.lower() not in KEYWORDS}


def test_metric_names_are_extracted_from_promql():
    assert metric_names('histogram_quantile(0.95, sum by (le, event) (rate(chat_event_seconds_bucket'
                        '{instance=~"$instance", event!="x"}[$__rate_interval])))') == {"chat_event_seconds_bucket"}
    assert metric_names('sum(rate(a_total{code=~"a|b"}[5m] offset 1h)) / on (instance) group_left(x) '
                        'b_gauge * (1 - c) or vector(0)') == {"a_total", "b_gauge", "c"}
    assert metric_names("max_over_time(up{job='chat'}[1h:5m]) > bool 0") == {"up"}
    assert metric_names("sum without (instance) (chat_rooms)") == {"chat_rooms"}
    nested = {"panels": [{"type": "row", "collapsed": True, "panels": [{"targets": [{"expr": "x_total"}]}]},
                         {"targets": [{"expr": "y"}]}],
              "templating": {"list": [{"type": "query", "query": "label_values(z{a=\"b\"}, instance)"}]}}
    assert sorted(exprs(nested)) == ["x_total", "y", 'z{a="b"}']


def test_the_dashboard_is_an_importable_grafana_model():
    dashboard = load()
    assert dashboard["schemaVersion"] >= 39 and dashboard["id"] is None and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["type"] == "query" and instance["datasource"] == DATASOURCE
    assert re.fullmatch(r"label_values\(\s*chat_connections\s*,\s*instance\s*\)", instance["definition"])
    assert instance["multi"] and instance["includeAll"]
    panels = list(walk(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), ids
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            # every selector of every query follows the instance picker
            selectors = re.findall(r"\b(chat_\w+)(\{[^}]*\})?", target["expr"])
            assert selectors and all('instance=~"$instance"' in matchers for _, matchers in selectors), target
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[x, y]}"
                cells[x, y] = panel["title"]
    titles = {panel["title"] for panel in panels}
    assert "Redis / readiness" in titles


def test_the_dashboard_covers_every_area():
    referenced = set().union(*(metric_names(expr) for expr in exprs(load())))
    assert not set(REQUIRED) - referenced, sorted(set(REQUIRED) - referenced)
    quantiles = [expr for expr in exprs(load()) if "histogram_quantile" in expr]
    for metric, label in (("chat_event_seconds_bucket", "event"), ("chat_http_seconds_bucket", "route")):
        for q in ("0.5", "0.95", "0.99"):
            assert any(f"histogram_quantile({q}," in e and metric in e and f"(le, {label})" in e
                       for e in quantiles), (metric, q)
    assert any(re.search(r"sum by \(code\) \(rate\(chat_errors_total", e) for e in exprs(load()))


async def test_every_queried_metric_is_on_the_metrics_page(server_url, make_client):
    # labelled counters and histograms print samples only once a label set is used: use them
    ana, room = await make_client("Ana"), new_room("dash")  # POST /api/session: chat_http_seconds
    await ana.join(room)  # chat_event_seconds{event="join"}
    await ana.send(room, "counted")  # chat_messages_in_total, chat_messages_out_total
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server_url}/api/session", json={"name": ""}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_name"
        async with http.get(f"{server_url}/metrics") as resp:
            assert resp.status == 200
            exposition = await resp.text()
    printed = {sample.name for family in text_string_to_metric_families(exposition) for sample in family.samples}
    referenced = set().union(*(metric_names(expr) for expr in exprs(load())))
    missing = sorted(referenced - printed)
    assert not missing, f"queried by the dashboard but not printed by /metrics: {missing}"
