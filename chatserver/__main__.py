"""`python -m chatserver`: read settings from the environment and flags, then serve."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from .app import create_app
from .config import Settings, SettingsError, load_settings
from .logs import configure_logging
from .serve import serve
from .transport import UntestedLibrary, check_library_versions

log = logging.getLogger("chatserver")


def main() -> None:
    try:
        settings = load_settings(sys.argv[1:], os.environ)
        check_library_versions()
    except (SettingsError, UntestedLibrary) as error:
        print(f"chatserver: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    # Python collects its youngest generation every 700 allocations by default; with
    # thousands of connections each pass walks more, and it took 30 % of the time of a
    # busy instance (bench/, 1,000 rooms). Almost everything here is freed by reference
    # counting, so collecting far less often costs little memory.
    gc.set_threshold(settings.gc_threshold)
    app = create_app(settings)
    event_loop_runner(settings)(serve(app, settings))


def event_loop_runner(settings: Settings) -> Callable[[Coroutine[Any, Any, None]], None]:
    """`uvloop.run` when asked for and importable, else `asyncio.run`."""
    if settings.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop cannot be imported: using asyncio's event loop")
        else:
            log.info("event loop: uvloop")
            return uvloop.run
    return asyncio.run


if __name__ == "__main__":
    main()
