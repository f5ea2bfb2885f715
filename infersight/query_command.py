"""``infersight query 'PROMQL'``: one PromQL query against a running server, printed for a terminal.

An instant query prints a table, one row per series and a column per label; a range query prints
one line per series: its labels, the number of points, min/max/last and a sparkline. Times are
Unix seconds, RFC 3339, ``now`` or ``now-1h`` (``-1h`` alone is the same); they are turned into
Unix seconds here so a range's default step can be worked out from them.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infersight.api_client import get_json
from model.durations import parse_duration_ms

_RELATIVE = re.compile(r"^(?:now)?(?:([-+])(.+))?$")
_SPARK = "▁▂▃▄▅▆▇█"
POINTS_PER_RANGE = 120  # the default step gives about this many points


def parse_time(text: str, now: float) -> float:
    """Unix seconds from ``1700000000``, ``2025-01-02T03:04:05Z``, ``now``, ``now-15m`` or ``-15m``."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _RELATIVE.match(text)
    if match and (text.startswith(("now", "-", "+"))):
        sign, amount = match.groups()
        if amount is None:
            return now
        offset = parse_duration_ms(amount) / 1000
        return now - offset if sign == "-" else now + offset
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use Unix seconds, RFC 3339, 'now' or 'now-1h'") from None


def parse_step(text: str) -> float:
    try:
        step = float(text)
    except ValueError:
        step = parse_duration_ms(text) / 1000
    if step <= 0:
        raise ValueError(f"step must be > 0, got {text!r}")
    return step


@dataclass(frozen=True, slots=True)
class QueryRequest:
    promql: str
    time: float | None = None  # instant query at this time (None: the server's now)
    start: float | None = None  # a range query when set
    end: float | None = None
    step: float | None = None

    @property
    def is_range(self) -> bool:
        return self.start is not None


def build_request(
    promql: str,
    at: str | None,
    start: str | None,
    end: str | None,
    step: str | None,
    now: float | None = None,
) -> QueryRequest:
    """The request the flags name: any of ``--start/--end/--step`` makes it a range query
    (start defaulting to an hour before end, end to now, step to about 120 points)."""
    now = time.time() if now is None else now
    if start is None and end is None and step is None:
        return QueryRequest(promql, None if at is None else parse_time(at, now))
    if at is not None:
        raise ValueError("--time is for an instant query; a range query takes --start/--end/--step")
    end_s = parse_time(end, now) if end is not None else now
    start_s = parse_time(start, now) if start is not None else end_s - 3600
    if start_s > end_s:
        raise ValueError("--start is after --end")
    if step is not None:
        step_s = parse_step(step)
    else:
        step_s = max(1.0, math.ceil((end_s - start_s) / POINTS_PER_RANGE))
    return QueryRequest(promql, start=start_s, end=end_s, step=step_s)


def run_query(server: str, request: QueryRequest, key: str | None) -> dict[str, Any]:
    if request.is_range:
        params = {"query": request.promql, "start": request.start, "end": request.end, "step": request.step}
        return get_json(server, "/api/v1/query_range", params, key)["data"]
    params: dict[str, Any] = {"query": request.promql}
    if request.time is not None:
        params["time"] = request.time
    return get_json(server, "/api/v1/query", params, key)["data"]


def printable(text: str) -> str:
    """``text`` safe for one terminal line: control characters, line and paragraph separators
    escaped (a label value is the sender's, and may hold a newline or a terminal escape)."""
    return "".join(
        ch
        if not unicodedata.category(ch).startswith(("C", "Zl", "Zp"))
        else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        for ch in str(text)
    )


def _series_name(metric: dict[str, str]) -> str:
    labels = ", ".join(
        f'{printable(k)}="{printable(v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)))}"'
        for k, v in sorted(metric.items())
        if k != "__name__"
    )
    return f"{printable(metric.get('__name__', ''))}{{{labels}}}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _sparkline(values: Sequence[float]) -> str:
    """One mark per value (at most 60, each the mean of its slice); ``·`` where it is not a number."""
    if len(values) > 60:
        size = len(values) / 60
        values = [
            sum(v / len(chunk) for v in chunk) if all(math.isfinite(v) for v in chunk) else math.nan
            for i in range(60)
            if (chunk := values[int(i * size) : int((i + 1) * size)])
        ]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)

    def mark(v: float) -> str:
        if not math.isfinite(v):
            return "·"
        if high == low:
            return _SPARK[0]
        # halves: the span of two huge values of opposite sign would overflow
        frac = (v / 2 - low / 2) / (high / 2 - low / 2)
        return _SPARK[max(0, min(len(_SPARK) - 1, int(frac * len(_SPARK))))]

    return "".join(mark(v) for v in values)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def render(data: dict[str, Any]) -> str:
    """The API's ``data`` for a terminal."""
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string"):
        stamp, value = result
        return f"{kind}  {printable(value)}  @ {stamp}"
    if not result:
        return f"no data ({kind} empty)"
    if kind == "vector":
        names = sorted({k for s in result for k in s["metric"] if k != "__name__"})
        header = ["metric", *(printable(n) for n in names), "value"]
        rows = sorted(
            [
                printable(c)
                for c in (s["metric"].get("__name__", ""), *(s["metric"].get(n, "") for n in names))
            ]
            + [printable(s["value"][1])]
            for s in result
        )
        return _table(header, rows)
    lines = []
    for series in sorted(result, key=lambda s: _series_name(s["metric"])):
        values = [_number(v) for _, v in series.get("values", [])]
        finite = [v for v in values if math.isfinite(v)]
        figures = f"min {min(finite):g}  max {max(finite):g}  last {values[-1]:g}" if finite else "no numbers"
        name = _series_name(series["metric"])
        lines.append(f"{name}  {len(values)} points  {figures}  {_sparkline(values)}")
    return "\n".join(lines)
