"""Calendar functions (``year()``, ``hour()``, …) as Go's ``time`` package computes them.

Prometheus converts each value with ``time.Unix(int64(v), 0).UTC()``. Ordinary values are done
column-wise with numpy (both are proleptic Gregorian). Go's float-to-int conversion on amd64 turns
NaN, ±Inf and out-of-range values into the minimum int64, and Go's internal arithmetic then wraps
around; those few values are replayed with Go's own algorithm (``absDate``) on wrapped integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from query.promql.blocks import FloatArray

_MIN_INT64 = -(2**63)
_U64 = 2**64
_SECONDS_PER_DAY = 86_400
_ABSOLUTE_ZERO_YEAR = -292_277_022_399
_UNIX_TO_INTERNAL = (1969 * 365 + 1969 // 4 - 1969 // 100 + 1969 // 400) * _SECONDS_PER_DAY
_INTERNAL_TO_ABSOLUTE = 292_277_022_400 * 31_556_952  # -(absoluteZeroYear - 1) * 365.2425 days
_DAYS_BEFORE = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365]
# numpy's datetime64[s] is exact well beyond this; Go only wraps near the int64 limits.
_SAFE_SECONDS = 2**62


def _go_int64(value: float) -> int:
    """Go's ``int64(v)`` on amd64: truncation, and the minimum int64 for NaN/Inf/overflow."""
    if math.isnan(value) or not (-(2.0**63) <= value < 2.0**63):
        return _MIN_INT64
    return int(value)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _go_parts(seconds: int) -> dict[str, int]:
    """Go's calendar fields for ``time.Unix(seconds, 0).UTC()``, wrap-around included."""
    abs_sec = (seconds + _UNIX_TO_INTERNAL + _INTERNAL_TO_ABSOLUTE) % _U64
    d = abs_sec // _SECONDS_PER_DAY
    n = d // 146_097
    y = 400 * n
    d -= 146_097 * n
    n = d // 36_524
    n -= n >> 2
    y += 100 * n
    d -= 36_524 * n
    n = d // 1_461
    y += 4 * n
    d -= 1_461 * n
    n = d // 365
    n -= n >> 2
    y += n
    d -= 365 * n
    year = (y + _ABSOLUTE_ZERO_YEAR + 2**63) % _U64 - 2**63
    yday = d
    day = yday
    month = 0
    if _is_leap(year) and day == 31 + 29 - 1:
        month, day = 2, 29
    else:
        if _is_leap(year) and day > 31 + 29 - 1:
            day -= 1
        month = day // 31
        end = _DAYS_BEFORE[month + 1]
        if day >= end:
            month += 1
            begin = end
        else:
            begin = _DAYS_BEFORE[month]
        month += 1
        day = day - begin + 1
    days_in_month = (
        _DAYS_BEFORE[month] - _DAYS_BEFORE[month - 1] + (1 if month == 2 and _is_leap(year) else 0)
    )
    return {
        "year": year,
        "month": month,
        "day_of_month": day,
        "day_of_year": yday + 1,
        "day_of_week": ((abs_sec + _SECONDS_PER_DAY) % (7 * _SECONDS_PER_DAY)) // _SECONDS_PER_DAY,
        "days_in_month": days_in_month,
        "hour": (abs_sec % _SECONDS_PER_DAY) // 3600,
        "minute": (abs_sec % 3600) // 60,
    }


def _days_in_month(d: np.ndarray) -> np.ndarray:
    month = d.astype("datetime64[M]")
    return ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)


DATE_PARTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "year": lambda d: d.astype("datetime64[Y]").astype(np.int64) + 1970,
    "month": lambda d: d.astype("datetime64[M]").astype(np.int64) % 12 + 1,
    "day_of_month": lambda d: (d.astype("datetime64[D]") - d.astype("datetime64[M]")).astype(np.int64) + 1,
    "day_of_year": lambda d: (d.astype("datetime64[D]") - d.astype("datetime64[Y]")).astype(np.int64) + 1,
    "day_of_week": lambda d: (d.astype("datetime64[D]").astype(np.int64) + 4) % 7,
    "days_in_month": _days_in_month,
    "hour": lambda d: d.astype("datetime64[h]").astype(np.int64) % 24,
    "minute": lambda d: d.astype("datetime64[m]").astype(np.int64) % 60,
}


def date_part(name: str, seconds: FloatArray) -> FloatArray:
    """Calendar field ``name`` of each value read as Unix seconds, as Prometheus' date functions."""
    safe = np.isfinite(seconds) & (np.abs(seconds) < _SAFE_SECONDS)
    whole = np.where(safe, seconds, 0).astype(np.int64).astype("datetime64[s]")
    out = DATE_PARTS[name](whole).astype(np.float64)
    for i in np.flatnonzero(~safe).tolist():
        out[i] = float(_go_parts(_go_int64(float(seconds[i])))[name])
    return out
