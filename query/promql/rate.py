"""``rate``, ``increase`` and ``delta`` from windows' edges: Prometheus 2.42's extrapolation, column-wise.

Used where windows are composed from rollup buckets (``rollup_eval``); windows over raw points go
through the compiled loop in ``kernels``, which does the same arithmetic in the same order.

The result is the change between the first and last point of the window (plus counter resets for
counters), extrapolated towards the window's edges by at most half an average sample interval, and
for counters never to before the counter would have been zero.
"""

from __future__ import annotations

import numpy as np

from query.promql.blocks import FloatArray, IntArray


def extrapolate(
    result: FloatArray,
    first_t: FloatArray,
    last_t: FloatArray,
    first_v: FloatArray,
    count: IntArray,
    refs: IntArray,
    range_ms: int,
    is_counter: bool,
    is_rate: bool,
) -> FloatArray:
    """Windows' raw changes (``result``) extrapolated to their edges, from their first/last points.

    Only meaningful where ``count >= 2``; the caller masks the rest.
    """
    to_start = (first_t - (refs - range_ms)) / 1000
    to_end = (refs - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    with np.errstate(all="ignore"):
        avg_gap = sampled / np.maximum(count - 1, 1)
        if is_counter:
            to_zero = sampled * (first_v / result)
            use_zero = (result > 0) & (first_v >= 0) & (to_zero < to_start)
            to_start = np.where(use_zero, to_zero, to_start)
        threshold = avg_gap * 1.1
        interval = sampled + np.where(to_start < threshold, to_start, avg_gap / 2)
        interval += np.where(to_end < threshold, to_end, avg_gap / 2)
        result = result * (interval / sampled)  # Prometheus' order of operations, for equal rounding
        if is_rate:
            result = result / (range_ms / 1000)
        return result
