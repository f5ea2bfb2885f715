"""``rate``, ``increase`` and ``delta``: Prometheus 2.42's extrapolation, per window or column-wise.

The result is the change between the first and last point of the window (plus counter resets for
counters), extrapolated towards the window's edges by at most half an average sample interval, and
for counters never to before the counter would have been zero.
"""

from __future__ import annotations

import numpy as np

from query.promql.blocks import FloatArray, IntArray


def extrapolated_rate(
    ts: IntArray, vs: FloatArray, ref_ms: int, range_ms: int, is_counter: bool, is_rate: bool
) -> float | None:
    """One window's value, ``None`` with fewer than two points (Prometheus drops the element)."""
    if len(vs) < 2:
        return None
    values = vs.tolist()
    result = values[-1] - values[0]
    if is_counter:
        prev = values[0]
        for cur in values[1:]:
            if cur < prev:
                result += prev
            prev = cur
    first_t, last_t = int(ts[0]), int(ts[-1])
    to_start = (first_t - (ref_ms - range_ms)) / 1000
    to_end = (ref_ms - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    avg_gap = sampled / (len(values) - 1)
    if is_counter and result > 0 and values[0] >= 0:
        to_zero = sampled * (values[0] / result)
        to_start = min(to_start, to_zero)
    threshold = avg_gap * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else avg_gap / 2
    interval += to_end if to_end < threshold else avg_gap / 2
    factor = interval / sampled
    if is_rate:
        factor /= range_ms / 1000
    return result * factor


def _add_resets(vs: FloatArray, first: IntArray, last: IntArray, result: FloatArray) -> FloatArray:
    """Add each counter reset's pre-reset value, in order, as Prometheus does, window by window.

    Windows without a reset (nearly all) are found with a count of drops; only the others are
    summed one by one, so rounding is Prometheus' and not a difference of large running sums.
    """
    is_drop = np.concatenate(([False], vs[1:] < vs[:-1]))
    cum = np.cumsum(is_drop)
    with_reset = np.flatnonzero(cum[last] != cum[first])
    if not len(with_reset):
        return result
    result = result.copy()
    for i in with_reset.tolist():
        a, b = int(first[i]), int(last[i])
        total = float(result[i])
        for j in (np.flatnonzero(is_drop[a + 1 : b + 1]) + a + 1).tolist():
            total += float(vs[j - 1])
        result[i] = total
    return result


def extrapolated_rate_columns(
    ts: IntArray,
    vs: FloatArray,
    lo: IntArray,
    hi: IntArray,
    refs: IntArray,
    range_ms: int,
    is_counter: bool,
    is_rate: bool,
) -> tuple[FloatArray, np.ndarray]:
    """All windows of one series at once; windows ``[lo[i], hi[i])`` index into ``ts``/``vs``."""
    mask = (hi - lo) >= 2
    values = np.zeros(len(refs))
    if not mask.any():
        return values, mask
    if not np.isfinite(vs).all():
        for i in np.flatnonzero(mask).tolist():
            a, b = int(lo[i]), int(hi[i])
            values[i] = extrapolated_rate(ts[a:b], vs[a:b], int(refs[i]), range_ms, is_counter, is_rate)
        return values, mask
    first = np.where(mask, lo, 0)
    last = np.where(mask, hi - 1, 0)
    result = vs[last] - vs[first]
    if is_counter:
        result = _add_resets(vs, first, last, result)
    first_t, last_t = ts[first].astype(np.float64), ts[last].astype(np.float64)
    values = extrapolate(result, first_t, last_t, vs[first], hi - lo, refs, range_ms, is_counter, is_rate)
    return np.where(mask, values, 0.0), mask


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
        factor = interval / sampled
        if is_rate:
            factor = factor / (range_ms / 1000)
        return result * factor
