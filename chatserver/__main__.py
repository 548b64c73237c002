"""`python -m chatserver`: read settings from the environment and flags, then serve."""

from __future__ import annotations

import asyncio
import os
import sys

from .app import create_app
from .config import SettingsError, load_settings
from .logs import configure_logging
from .serve import serve


def main() -> None:
    try:
        settings = load_settings(sys.argv[1:], os.environ)
    except SettingsError as error:
        print(f"chatserver: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    app = create_app(settings)
    asyncio.run(serve(app, settings))


if __name__ == "__main__":
    main()
