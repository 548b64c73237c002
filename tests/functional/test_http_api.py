"""The HTTP API: rooms, history, publishing from a backend, health, readiness, metrics."""

from __future__ import annotations

import aiohttp
import pytest

from tests.chat_client import new_room
from tests.conftest import API_KEY


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_rooms_lists_public_rooms_most_online_first(server_url, make_client):
    busy, quiet = new_room("busy"), new_room("quiet")
    for name in ("A", "B", "C"):
        await (await make_client(name)).join(busy)
    await (await make_client("D")).join(quiet)
    async with aiohttp.ClientSession() as http, http.get(f"{server_url}/api/rooms") as resp:
        rooms = (await resp.json())["rooms"]
    online = {r["room"]: r["online"] for r in rooms}
    assert online[busy] == 3 and online[quiet] == 1
    assert [r["room"] for r in rooms].index(busy) < [r["room"] for r in rooms].index(quiet)
    assert [r["online"] for r in rooms] == sorted((r["online"] for r in rooms), reverse=True)


async def test_http_history_pages_like_the_event(server_url, make_client):
    ana, room = await make_client("Ana"), new_room("h")
    await ana.join(room)
    for n in range(1, 6):
        await ana.send(room, f"m{n}")
    async with aiohttp.ClientSession(headers=bearer(ana.token)) as http:
        async with http.get(f"{server_url}/api/rooms/{room}/messages?before_seq=5&limit=2") as resp:
            body = await resp.json()
            assert [m["seq"] for m in body["messages"]] == [3, 4] and body["has_more"] is True
        for query in ("limit=0", "limit=abc", "before_seq=0", "limit=101"):
            async with http.get(f"{server_url}/api/rooms/{room}/messages?{query}") as resp:
                assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_payload"
        async with http.get(f"{server_url}/api/rooms/bad%20room/messages") as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_room"


async def test_http_history_needs_a_token_even_for_public_rooms(server_url):
    async with aiohttp.ClientSession() as http, http.get(f"{server_url}/api/rooms/lobby/messages") as resp:
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"


async def test_a_backend_publishes_with_the_api_key(server_url, make_client):
    ana, room = await make_client("Ana"), new_room("pub")
    await ana.join(room)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server_url}/api/rooms/{room}/messages", headers=bearer(API_KEY),
                             json={"text": "deploy finished", "user": {"id": "ci", "name": "CI bot"}}) as resp:
            assert resp.status == 201
            message = await resp.json()
        assert message["seq"] == 1 and message["user"] == {"id": "ci", "name": "CI bot"}
        got = await ana.wait_for("message", lambda m: len(m) == 1)
        assert got == [message]
        async with http.post(f"{server_url}/api/rooms/{room}/messages", headers=bearer(API_KEY),
                             json={"text": "no user given"}) as resp:
            assert resp.status == 201 and (await resp.json())["user"]["id"] == "system"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-key-wrong-key"},
    {"Authorization": f"Basic {API_KEY}"},
], ids=["no-authorization", "wrong-key", "not-bearer"])
async def test_publishing_without_the_api_key_is_refused(server_url, headers):
    async with aiohttp.ClientSession() as http, http.post(
            f"{server_url}/api/rooms/lobby/messages", headers=headers, json={"text": "x"}) as resp:
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("body, code", [
    ({"text": ""}, "invalid_payload"),
    ({"text": 5}, "invalid_payload"),
    ({"text": "x" * 4001}, "too_large"),
    ({"text": "x", "user": {"id": "u"}}, "invalid_payload"),
    ({"text": "x", "user": {"id": "u", "name": ""}}, "invalid_payload"),
])
async def test_bad_publish_bodies_are_refused(server_url, body, code):
    async with aiohttp.ClientSession() as http, http.post(
            f"{server_url}/api/rooms/lobby/messages", headers=bearer(API_KEY), json=body) as resp:
        assert (await resp.json())["error"]["code"] == code
        assert resp.status == (413 if code == "too_large" else 400)


async def test_publishing_is_404_without_an_api_key(start_server):
    server = start_server(API_KEY="")
    async with aiohttp.ClientSession() as http, http.post(
            f"{server.url}/api/rooms/lobby/messages", headers=bearer("anything"), json={"text": "x"}) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_an_oversized_body_is_413(server_url):
    async with aiohttp.ClientSession() as http, http.post(
            f"{server_url}/api/session", data=b"x" * (2 * 1024 * 1024),
            headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413 and (await resp.json())["error"]["code"] == "too_large"


async def metrics(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """GET /metrics (checked to be plain text), as {sample name with labels: value}."""
    async with http.get(f"{url}/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        text = await resp.text()
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


COUNTERS = ["chat_messages_in_total", "chat_messages_out_total", 'chat_errors_total{code="invalid_room"}',
            'chat_event_seconds_count{event="message"}']


async def test_health_readiness_and_metrics(server_url, make_client):
    ana, room = await make_client("Ana"), new_room("metrics")
    await ana.join(room)
    async with aiohttp.ClientSession() as http:
        before = await metrics(http, server_url)
        await ana.send(room, "count me")
        await ana.call("join", {"room": "bad room"})
        async with http.get(f"{server_url}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{server_url}/readyz") as resp:
            assert resp.status == 200
        values = await metrics(http, server_url)
    assert values["chat_connections"] >= 1 and values["chat_rooms"] >= 1
    assert values["chat_messages_in_total"] >= 1 and values["chat_messages_out_total"] >= 1
    assert values['chat_errors_total{code="invalid_room"}'] >= 1
    assert values['chat_event_seconds_count{event="message"}'] >= 1
    grown = {name: values[name] - before.get(name, 0) for name in COUNTERS}
    assert all(by >= 1 for by in grown.values()), grown


async def test_pages_carry_a_strict_content_security_policy(server_url):
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/chat/lobby"):
            async with http.get(f"{server_url}{path}") as resp:
                assert resp.status == 200
                assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
                assert resp.headers["Referrer-Policy"] == "no-referrer"
        async with http.get(f"{server_url}/chat/not%20a%20room") as resp:
            assert resp.status == 404
        async with http.get(f"{server_url}/static/vendor/socket.io.min.js") as resp:
            assert resp.status == 200 and "io" in await resp.text()


@pytest.mark.parametrize("path", ["/socket.io/?EIO=4&transport=polling", "/api/rooms", "/no/such/page"])
async def test_other_answers_carry_the_security_headers_too(server_url, path):
    async with aiohttp.ClientSession() as http, http.get(f"{server_url}{path}") as resp:
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_unknown_api_routes_answer_json_404(server_url):
    async with aiohttp.ClientSession() as http, http.get(f"{server_url}/api/nothing-here") as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
