"""Compiled loops (numba) for the hot range functions and instant selectors: every window (or
step) of every series in one pass.

Why compiled: a long range query's cost is a few operations per window over tens of millions of
windows (15 days at a 1-minute step is 21,600 windows per series). As numpy expressions each
operation is a pass over arrays far larger than the cache, with a temporary per step; one loop per
series walks its points once, finding each window's edges by moving two cursors forward instead of
searching, and keeps everything in registers. The arithmetic is Prometheus 2.42's
``extrapolatedRate`` written out in the same order, so results agree with it bit for bit where
float rounding allows.

Series are laid end to end: ``ts``/``vs`` hold every series' points sorted by time, series ``i``
at ``[starts[i], starts[i + 1])``. Windows are closed ``[ref - range, ref]`` as in Prometheus 2.42.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from query.promql.blocks import BoolArray, FloatArray, IntArray


@numba.njit(cache=True, nogil=True)
def _rate_kernel(
    ts: IntArray,
    vs: FloatArray,
    starts: IntArray,
    refs: IntArray,
    range_ms: int,
    is_counter: bool,
    is_rate: bool,
    out: FloatArray,
    mask: BoolArray,
    drops: IntArray,
) -> None:
    range_s = range_ms / 1000.0
    for i in range(len(starts) - 1):
        first_idx, end_idx = starts[i], starts[i + 1]
        # drops[k]: counter drops among this series' points up to k, to skip reset-free windows
        if is_counter:
            count = 0
            drops[first_idx] = 0
            for k in range(first_idx + 1, end_idx):
                if vs[k] < vs[k - 1]:
                    count += 1
                drops[k] = count
        lo = first_idx
        hi = first_idx
        prev_ref = refs[0] if len(refs) else 0
        for j in range(len(refs)):
            ref = refs[j]
            if ref < prev_ref:  # refs go back (never in a range query): search from the start
                lo = first_idx
                hi = first_idx
            prev_ref = ref
            range_start = ref - range_ms
            while lo < end_idx and ts[lo] < range_start:
                lo += 1
            if hi < lo:
                hi = lo
            while hi < end_idx and ts[hi] <= ref:
                hi += 1
            n = hi - lo
            if n < 2:
                mask[i, j] = False
                out[i, j] = 0.0
                continue
            last = hi - 1
            result = vs[last] - vs[lo]
            if is_counter and drops[last] != drops[lo]:
                last_value = 0.0
                for k in range(lo, hi):
                    if vs[k] < last_value:
                        result += last_value
                    last_value = vs[k]
            to_start = (ts[lo] - range_start) / 1000.0
            to_end = (ref - ts[last]) / 1000.0
            sampled = (ts[last] - ts[lo]) / 1000.0
            avg_gap = sampled / (n - 1)
            if is_counter and result > 0 and vs[lo] >= 0:
                to_zero = sampled * (vs[lo] / result)
                if to_zero < to_start:
                    to_start = to_zero
            threshold = avg_gap * 1.1
            interval = sampled
            if to_start < threshold:
                interval += to_start
            else:
                interval += avg_gap / 2
            if to_end < threshold:
                interval += to_end
            else:
                interval += avg_gap / 2
            result = result * (interval / sampled)
            if is_rate:
                result = result / range_s
            out[i, j] = result
            mask[i, j] = True


def extrapolated_rates(
    ts: IntArray,
    vs: FloatArray,
    starts: IntArray,
    refs: IntArray,
    range_ms: int,
    is_counter: bool,
    is_rate: bool,
) -> tuple[FloatArray, BoolArray]:
    """``rate``/``increase``/``delta`` of every series at every ref: values and presence, (series, refs)."""
    n = len(starts) - 1
    out = np.empty((n, len(refs)), dtype=np.float64)
    mask = np.empty((n, len(refs)), dtype=np.bool_)
    drops = np.empty(len(ts) if is_counter else 0, dtype=np.int64)
    _rate_kernel(
        np.ascontiguousarray(ts, dtype=np.int64),
        np.ascontiguousarray(vs, dtype=np.float64),
        np.ascontiguousarray(starts, dtype=np.int64),
        np.ascontiguousarray(refs, dtype=np.int64),
        int(range_ms),
        bool(is_counter),
        bool(is_rate),
        out,
        mask,
        drops,
    )
    return out, mask


@numba.njit(cache=True, nogil=True)
def latest_points(
    ts: IntArray, bits: npt.NDArray[np.uint64], starts: IntArray, refs: IntArray, lookback_ms: int, stale: int
) -> tuple[IntArray, BoolArray]:
    """For every series and every step time in ``refs``: the index in ``ts`` of the series' latest
    point at or before the step, and whether it counts (no older than the lookback, and its value's
    bits, ``bits``, not the staleness marker ``stale``); arrays of a row per series, a column per
    step (-1 where none). A cursor per series moves forward over its points as the steps do (back
    to the series' start where a step is earlier than the one before)."""
    n, m = len(starts) - 1, len(refs)
    at = np.full((n, m), -1, np.int64)
    present = np.zeros((n, m), np.bool_)
    for i in range(n):
        lo, hi = starts[i], starts[i + 1]
        p = lo  # the first point after the step
        for j in range(m):
            ref = refs[j]
            if j and ref < refs[j - 1]:
                p = lo
            while p < hi and ts[p] <= ref:
                p += 1
            if p > lo:
                at[i, j] = p - 1
                present[i, j] = ts[p - 1] >= ref - lookback_ms and bits[p - 1] != stale
    return at, present


def warm() -> None:
    """Load (or compile) the loops now, not inside the first query's time (0.2 s cached, 1 s not)."""
    one = np.zeros(1, dtype=np.int64)
    extrapolated_rates(one, np.zeros(1), np.array([0, 1]), one, 1, True, True)  # one build for all flags
    latest_points(one, np.zeros(1, dtype=np.uint64), np.array([0, 1]), one, 1, np.uint64(1))
