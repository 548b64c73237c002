"""CORS as a browser enforces it: a page on another origin may use the API and open a
Socket.IO connection only when CORS_ORIGINS names that origin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import BrowserContext

from tests.chat_client import new_session
from tests.conftest import ROOT, ServerProcess, free_port

CLIENT_JS = ROOT / "web" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
TRY_API = """async (base) => {
  try {
    const response = await fetch(base + "/api/session", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: "Web"})});
    return String(response.status);
  } catch (error) { return "blocked"; }
}"""
TRY_SOCKET = """([base, token]) => new Promise((resolve) => {
  const socket = io(base + "/chat", {auth: {token}, reconnection: false});
  socket.on("connect", () => { socket.close(); resolve("connected"); });
  socket.on("connect_error", () => { socket.close(); resolve("refused"); });
})"""


@pytest.fixture
async def other_site() -> AsyncIterator[str]:
    """A page on an origin of its own (another port), with the official client."""
    async def blank(_: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>elsewhere</title>", content_type="text/html")

    async def client_js(_: web.Request) -> web.FileResponse:
        return web.FileResponse(Path(CLIENT_JS))

    app = web.Application()
    app.router.add_get("/", blank)
    app.router.add_get("/socket.io.min.js", client_js)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def _results_from(context: BrowserContext, site: str, server: ServerProcess) -> tuple[str, str]:
    page = await context.new_page()
    await page.goto(site + "/")
    await page.add_script_tag(url=site + "/socket.io.min.js")
    token = (await new_session(server.url, "Web"))["token"]
    return await page.evaluate(TRY_API, server.url), await page.evaluate(TRY_SOCKET, [server.url, token])


async def test_other_origins_are_refused_by_default(start_server: Callable[..., ServerProcess], other_site: str,
                                                    new_context: Callable[[], Awaitable[BrowserContext]]) -> None:
    server = start_server()
    assert await _results_from(await new_context(), other_site, server) == ("blocked", "refused")


async def test_a_configured_origin_may_use_api_and_socket(start_server: Callable[..., ServerProcess], other_site: str,
                                                          new_context: Callable[[], Awaitable[BrowserContext]]) -> None:
    server = start_server(CORS_ORIGINS=other_site)
    assert await _results_from(await new_context(), other_site, server) == ("200", "connected")
