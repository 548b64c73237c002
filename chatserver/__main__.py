"""`python -m chatserver`: read settings from the environment and flags, then serve."""

from __future__ import annotations

import asyncio
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
