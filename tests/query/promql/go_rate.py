"""Prometheus 2.42's ``extrapolatedRate`` (promql/functions.go) transcribed line by line: the oracle
the compiled loop in ``query.promql.kernels`` is checked against, one window at a time."""

from __future__ import annotations

import numpy as np


def extrapolated_rate(
    ts: np.ndarray, vs: np.ndarray, ref_ms: int, range_ms: int, is_counter: bool, is_rate: bool
) -> float | None:
    """One window ``[ref - range, ref]``'s points; ``None`` with fewer than two (the element is dropped)."""
    if len(vs) < 2:
        return None
    values = [float(v) for v in vs]
    result = values[-1] - values[0]
    if is_counter:
        last_value = 0.0
        for v in values:
            if v < last_value:
                result += last_value
            last_value = v
    range_start, range_end = ref_ms - range_ms, ref_ms
    to_start = (int(ts[0]) - range_start) / 1000
    to_end = (range_end - int(ts[-1])) / 1000
    sampled = (int(ts[-1]) - int(ts[0])) / 1000
    avg_gap = sampled / (len(values) - 1)
    if is_counter and result > 0 and values[0] >= 0:
        to_zero = sampled * (values[0] / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = avg_gap * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else avg_gap / 2
    interval += to_end if to_end < threshold else avg_gap / 2
    result = result * (interval / sampled)
    if is_rate:
        result = result / (range_ms / 1000)
    return result
