"""Serve an app until SIGTERM or SIGINT, draining first so balancers stop sending traffic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from .config import Settings
from .keys import draining_key

log = logging.getLogger(__name__)


async def serve(app: web.Application, settings: Settings) -> None:
    """Listen on `settings.host:port` until asked to stop.

    On SIGTERM (or SIGINT) `/readyz` answers 503 at once, while everything else keeps
    serving for `settings.shutdown_delay` seconds, long enough for a balancer's health
    check to take the instance out. A second signal ends the delay early. Then the
    listener closes, every connection is closed (see `create_app`), and in-flight
    handlers get `settings.shutdown_timeout` seconds.
    """
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info("serving", extra={"host": settings.host, "port": settings.port})
        signalled = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, signalled.set)
        await signalled.wait()
        app[draining_key].set()
        log.info("draining: /readyz answers 503", extra={"delay": settings.shutdown_delay})
        signalled.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signalled.wait(), settings.shutdown_delay)
    finally:
        await runner.cleanup()
