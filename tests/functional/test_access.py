"""Who may connect from where, and what never reaches the logs."""

from __future__ import annotations

import aiohttp
import pytest
import socketio

from tests.chat_client import NAMESPACE, new_session


async def connect_from(url: str, token: str, origin: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, namespaces=[NAMESPACE], auth={"token": token}, headers={"Origin": origin},
                         transports=["websocket"], wait_timeout=5)
    return client


async def test_by_default_only_the_same_origin_may_connect(server_url):
    session = await new_session(server_url, "Ana")
    same = await connect_from(server_url, session["token"], server_url)
    assert same.connected
    await same.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect_from(server_url, session["token"], "https://evil.example")


async def test_configured_origins_may_connect(start_server):
    server = start_server(CORS_ORIGINS="https://chat.example.com")
    session = await new_session(server.url, "Ana")
    allowed = await connect_from(server.url, session["token"], "https://chat.example.com")
    assert allowed.connected
    await allowed.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect_from(server.url, session["token"], "https://other.example")


async def test_by_default_browsers_of_other_origins_may_not_call_the_api(server_url):
    async with aiohttp.ClientSession() as http:
        async with http.post(server_url + "/api/session", json={"name": "Eve"},
                             headers={"Origin": "https://evil.example"}) as response:
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "forbidden"
            assert "Access-Control-Allow-Origin" not in response.headers
        async with http.post(server_url + "/api/session", json={"name": "Ana"},
                             headers={"Origin": server_url}) as response:
            assert response.status == 200  # the page's own origin
        async with http.post(server_url + "/api/session", json={"name": "Bot"}) as response:
            assert response.status == 200  # no Origin: not a browser


async def test_configured_origins_may_call_the_api(start_server):
    server = start_server(CORS_ORIGINS="https://chat.example.com")
    app = {"Origin": "https://chat.example.com"}
    async with aiohttp.ClientSession() as http:
        preflight = {**app, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"}
        async with http.options(server.url + "/api/rooms", headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "https://chat.example.com"
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
            assert "POST" in response.headers["Access-Control-Allow-Methods"]
        async with http.post(server.url + "/api/session", json={"name": "Ana"}, headers=app) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "https://chat.example.com"
            token = (await response.json())["token"]
        async with http.post(server.url + "/api/rooms", json={"private": "yes"},
                             headers={**app, "Authorization": f"Bearer {token}"}) as response:
            assert response.status == 400  # errors carry the header too, so the page can read them
            assert response.headers["Access-Control-Allow-Origin"] == "https://chat.example.com"
        async with http.options(server.url + "/api/rooms", headers={**preflight, "Origin": "https://other.example"}) \
                as response:
            assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers


async def test_tokens_and_message_texts_stay_out_of_logs(start_server, make_client):
    server = start_server(LOG_LEVEL="DEBUG")  # every line there is
    ana = await make_client("Ana", url=server.url)
    await ana.join("logged-room")
    await ana.send("logged-room", "my very secret text 4711")
    await ana.call("message", {"room": "logged-room", "text": "x" * 5000})
    await ana.close()
    server.stop()
    log = server.log()
    assert "logged-room" in log and ana.user["id"] in log  # the log does say who did what where
    assert "secret text 4711" not in log and "x" * 100 not in log
    assert ana.token not in log and ana.token.split(".")[2] not in log


async def test_websockets_decline_compression(server_url):
    """Per-connection zlib state is costly for small chat frames; see `CheckedWebSocket`."""
    ws_url = server_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, compress=15) as ws:
        assert (await ws.receive(timeout=5)).data.startswith("0{")  # the Engine.IO handshake
        assert ws.compress == 0
