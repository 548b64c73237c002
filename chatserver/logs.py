"""Log lines for people (`key=value`, the default) or for log shippers (one JSON object a line).

Log calls put their fields in `extra`: `log.info("join", extra={"room": room, "user": user_id})`.
Both formats carry the same fields; the text one appends them as `key=value`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from .config import Settings, log_level_number

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_NOT_FIELDS = frozenset(RESERVED_ATTRS) | {"taskName", "color_message"}


def configure_logging(settings: Settings) -> None:
    """Send the root logger's records to stderr in `settings.log_format`."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(TEXT_FORMAT, rename_fields={"asctime": "time", "levelname": "level",
                                                                   "name": "logger"})
                         if settings.log_format == "json" else KeyValueFormatter(TEXT_FORMAT))
    logging.basicConfig(level=log_level_number(settings), handlers=[handler], force=True)


class KeyValueFormatter(logging.Formatter):
    """The format string, then each field of `extra` as `key=value` (quoted when it has spaces)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={_value(value)}" for key, value in record.__dict__.items()
                          if key not in _NOT_FIELDS)
        line = super().formatMessage(record)
        return f"{line} {fields}" if fields else line


def _value(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(ch in text for ch in ' "=\n') else text
