"""Log lines: `key=value` text by default, one JSON object per line with LOG_FORMAT=json,
with the same fields either way."""

from __future__ import annotations

import json

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
    log, user, room = await _one_join(start_server, make_client)
    joins = [line for line in log.splitlines() if " chatserver.service join " in line]
    assert len(joins) == 1, log
    assert f"room={room}" in joins[0] and f"user={user['id']}" in joins[0] and "recovered=False" in joins[0]


async def test_json_lines_carry_the_same_fields(start_server, make_client):
    log, user, room = await _one_join(start_server, make_client, LOG_FORMAT="json")
    records = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is one object
    assert {"time", "level", "logger", "message"} <= set(records[0])
    joins = [r for r in records if r["logger"] == "chatserver.service" and r["message"] == "join"]
    assert len(joins) == 1, records
    assert joins[0]["level"] == "INFO"
    assert (joins[0]["room"], joins[0]["user"], joins[0]["recovered"]) == (room, user["id"], False)
    assert {"connect", "disconnect"} <= {r["message"] for r in records if r["logger"] == "chatserver.namespace"}
