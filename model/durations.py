"""Durations written as Prometheus writes them (``10s``, ``1m30s``, ``59999ms``) or as plain seconds."""

from __future__ import annotations

import math
import re

_UNITS_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "y": 31_536_000_000,
}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
# Go's time.Duration (int64 nanoseconds), the most Prometheus reads: about 292 years.
_MAX_MS = 9_223_372_036_854
_MAX_SECONDS = _MAX_MS / 1000


def parse_duration_ms(text: str | int | float) -> int:
    """Milliseconds in a duration; numbers are seconds. Raises ValueError naming the bad text."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration: {text!r}")
        if not math.isfinite(text) or text > _MAX_SECONDS:
            raise ValueError(f"not a finite duration: {text!r}")
        return round(float(text) * 1000)
    s = text.strip()
    try:
        seconds = float(s)
    except ValueError:
        pass
    else:
        ok = s and math.isfinite(seconds) and 0 <= seconds <= _MAX_SECONDS
        return round(seconds * 1000) if ok else _fail(text)
    pos, total = 0, 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s or total > _MAX_MS:
        _fail(text)
    return total


def _fail(text: object) -> int:
    raise ValueError(f"not a duration: {text!r} (expected e.g. 10s, 1m30s, 500ms)")
