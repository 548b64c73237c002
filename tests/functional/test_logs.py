"""Log lines: `key=value` text by default, one JSON object per line with LOG_FORMAT=json,
with the same fields either way. Per-connection lines (connect, join, leave, disconnect) are
debug: at info level a reconnect storm is counted in /metrics, not logged line by line."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.chat_client import new_room


async def _one_join(start_server, make_client, **env: str) -> tuple[str, dict, str]:
    server = start_server(**env)
    room = new_room("logged")
    ana = await make_client("Ana", url=server.url)
    await ana.join(room)
    await ana.close()
    server.stop()
    return server.log(), ana.user, room


async def test_text_lines_carry_key_value_fields(start_server, make_client):
    log, user, room = await _one_join(start_server, make_client, LOG_LEVEL="DEBUG")
    joins = [line for line in log.splitlines() if " chatserver.service join " in line]
    assert len(joins) == 1, log
    assert f"room={room}" in joins[0] and f"user={user['id']}" in joins[0] and "recovered=False" in joins[0]


async def test_json_lines_carry_the_same_fields(start_server, make_client):
    log, user, room = await _one_join(start_server, make_client, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    records = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is one object
    assert {"time", "level", "logger", "message"} <= set(records[0])
    joins = [r for r in records if r["logger"] == "chatserver.service" and r["message"] == "join"]
    assert len(joins) == 1, records
    assert joins[0]["level"] == "DEBUG"
    assert (joins[0]["room"], joins[0]["user"], joins[0]["recovered"]) == (room, user["id"], False)
    assert {"connect", "disconnect"} <= {r["message"] for r in records if r["logger"] == "chatserver.namespace"}


async def test_at_info_level_connections_are_counted_not_logged(start_server, make_client):
    server = start_server()
    for name in ("Ana", "Ben"):
        client = await make_client(name, url=server.url)
        await client.join(new_room("counted"))
        await client.close()
    samples = await _metrics(server.url)
    for _ in range(50):  # the server hears a close a moment after the client has made it
        if samples[("chat_disconnects_total", ())] == 2:
            break
        await asyncio.sleep(0.1)
        samples = await _metrics(server.url)
    server.stop()
    assert samples[("chat_connects_total", (("result", "accepted"),))] == 2
    assert samples[("chat_disconnects_total", ())] == 2
    lines = server.log().splitlines()
    assert not [line for line in lines if " connect " in line or " join " in line or " disconnect " in line], lines


async def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        exposition = await resp.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}
