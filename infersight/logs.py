"""Where log lines go and in which form: text for people, one JSON object per line for log shippers.

``INFERSIGHT_LOG_FORMAT=json`` (or ``text``, the default) picks the form. A JSON line holds the
time (RFC 3339, UTC), the level, the message, where it was logged, and every bound field (a
sidecar's lines carry ``target`` and ``service_id``), plus the traceback as ``exception`` when
there is one; no colour codes, one line per record whatever the message holds. An unknown value
is not fatal: the log stays text and says so in its first line.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from loguru import logger

ENV_VAR = "INFERSIGHT_LOG_FORMAT"
FORMATS = ("text", "json")


class LogFormatError(ValueError):
    """``INFERSIGHT_LOG_FORMAT`` names no known format."""


def log_format(environ: Mapping[str, str] | None = None) -> str:
    """The format the environment asks for: ``text`` unless ``INFERSIGHT_LOG_FORMAT`` says ``json``."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower() or "text"
    if value not in FORMATS:
        raise LogFormatError(f"{ENV_VAR}: expected one of {', '.join(FORMATS)}, got {value[:50]!r}")
    return value


def to_json_line(record: Mapping[str, Any]) -> str:
    """One loguru record as one JSON line."""
    body: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
        "function": record["function"],
        "line": record["line"],
    }
    for key, value in record["extra"].items():
        body.setdefault(
            key, value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
        )
    exception = record["exception"]
    if exception is not None:
        body["exception"] = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        ).rstrip()
    return json.dumps(body, ensure_ascii=False, default=str) + "\n"


def add_sink(write: Callable[[str], Any], level: str, fmt: str | None = None) -> int:
    """Add ``write`` as a loguru sink at ``level`` in ``fmt`` (default: from the environment)."""
    problem = ""
    if fmt is None:
        try:
            fmt = log_format()
        except LogFormatError as err:
            fmt, problem = "text", f"{err}; writing text"
    if fmt == "json":
        sink = logger.add(
            lambda message: write(to_json_line(message.record)), level=level, format="{message}"
        )
    else:
        sink = logger.add(write, level=level)
    if problem:
        logger.warning(problem)
    return sink
