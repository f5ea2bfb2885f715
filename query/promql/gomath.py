"""Go float64 arithmetic where Python's differs, so results match Prometheus bit for bit.

Python raises on ``x / 0`` where Go gives ±Inf or NaN; Prometheus sums with Kahan-Neumaier
compensation whose NaN/Inf behaviour must be reproduced exactly (e.g. ``stddev_over_time`` of a
window holding +Inf is NaN, not +Inf).
"""

from __future__ import annotations

import math


def kahan_inc(inc: float, total: float, comp: float) -> tuple[float, float]:
    """Prometheus' ``kahanSumInc``: one Neumaier step, returns ``(sum, compensation)``."""
    t = total + inc
    if abs(total) >= abs(inc):
        comp += (total - t) + inc
    else:
        comp += (inc - t) + total
    return t, comp


def kahan_sum(values: list[float]) -> tuple[float, float]:
    """Sum and compensation of ``values`` in order (add them yourself: callers differ on Inf)."""
    total, comp = 0.0, 0.0
    for v in values:
        total, comp = kahan_inc(v, total, comp)
    return total, comp


def go_div(a: float, b: float) -> float:
    """IEEE division: ``x/0`` is ±Inf, ``0/0`` and ``NaN/0`` are NaN."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)
