"""`python -m chatserver`: read settings from the environment and flags, then serve."""

from __future__ import annotations

import logging
import os
import sys

from aiohttp import web

from .app import create_app
from .config import SettingsError, load_settings, log_level_number


def main() -> None:
    try:
        settings = load_settings(sys.argv[1:], os.environ)
    except SettingsError as error:
        print(f"chatserver: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(level=log_level_number(settings),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings)
    web.run_app(app, host=settings.host, port=settings.port, access_log=None,
                shutdown_timeout=settings.shutdown_timeout, print=None)


if __name__ == "__main__":
    main()
