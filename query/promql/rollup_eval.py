"""Range functions composed from rollup buckets instead of raw samples (``store.rollups``).

A window ``[ref - range, ref]`` whose ends are multiples of the bucket width ``W`` holds exactly the
points of the buckets ending in ``(ref - range, ref]`` plus, if there is one, the point at
``ref - range`` itself: the last point of the bucket ending there. Every function here needs only
per-bucket aggregates and the two points at each bucket boundary (for counter resets and changes
between buckets), so its value is Prometheus' up to floating-point summation order (sums of
per-bucket sums rather than one running sum: ~1e-15 relative).

Used for the functions in ``FUNCTIONS`` over a plain matrix selector when the range and every step
time are multiples of a width the store keeps (``pick_width``). A selection holding NaN or ±Inf
goes back to raw samples (``evaluate`` returns None): Prometheus' special cases for those are kept
by the per-point code.
"""

from __future__ import annotations

import numpy as np

from model.rollups import BucketSeries
from query.promql.blocks import Col, FloatArray, IntArray, VectorBlock, dedupe, drop_name
from query.promql.rate import extrapolate

FUNCTIONS = frozenset(
    {
        "rate",
        "increase",
        "delta",
        "irate",
        "idelta",
        "count_over_time",
        "sum_over_time",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "last_over_time",
        "present_over_time",
        "changes",
        "resets",
    }
)


def pick_width(widths: tuple[int, ...], refs: IntArray, range_ms: int) -> int | None:
    """The widest bucket width that tiles every window exactly, or None."""
    for width in sorted(widths, reverse=True):
        if range_ms % width == 0 and not (refs % width).any():
            return width
    return None


class _Windows:
    """Every (series, step) window as index ranges into all series' buckets laid end to end."""

    def __init__(self, series: list[BucketSeries], refs: IntArray, range_ms: int) -> None:
        cols = {k: np.concatenate([s.columns[k] for s in series]) for k in series[0].columns}
        self.c = cols
        ends = np.concatenate([s.end_ms for s in series])
        n, steps = len(series), len(refs)
        lo = np.empty((n, steps), dtype=np.int64)
        hi = np.empty((n, steps), dtype=np.int64)
        first_row = np.empty((n, steps), dtype=np.int64)
        offset = 0
        for i, s in enumerate(series):  # series by series: one series' buckets stay in cache
            lo[i] = np.searchsorted(s.end_ms, refs - range_ms, "right") + offset
            hi[i] = np.searchsorted(s.end_ms, refs, "right") + offset
            first_row[i] = offset
            offset += len(s.end_ms)
        self.lo, self.hi = lo.ravel(), hi.ravel()
        self.refs = np.tile(refs, n)
        self.range_ms = range_ms
        start = self.refs - range_ms
        before = np.maximum(self.lo - 1, 0)
        # The point exactly at the window's start: the last point of the bucket ending there.
        self.has_b = (
            (self.lo > first_row.ravel()) & (ends[before] == start) & (cols["last_ts"][before] == start)
        )
        self.b = before
        self.nb = self.hi - self.lo
        self.count = _int_sums(cols["count"], self.lo, self.hi) + self.has_b
        # Pairs of consecutive buckets of one series: the drop/change across their boundary.
        last_v, first_v = cols["last_value"], cols["first_value"]
        same = np.r_[False, np.ones(len(ends) - 1, dtype=bool)] if len(ends) else np.zeros(0, bool)
        same[first_row[:, 0]] = False
        prev_last = np.r_[0.0, last_v[:-1]] if len(ends) else last_v
        self.cross_drop = same & (first_v < prev_last)
        self.cross_change = same & (first_v != prev_last)
        self.cross_correction = np.where(self.cross_drop, prev_last, 0.0)
        # Bucket pairs inside the window: from the first bucket (or the start point) to the last.
        self.pair_lo = np.where(self.nb > 0, self.lo + 1 - self.has_b, self.hi)

    def first(self) -> tuple[FloatArray, FloatArray]:
        """Time and value of each window's first point."""
        c, b, lo = self.c, self.b, np.minimum(self.lo, len(self.c["first_ts"]) - 1)
        ts = np.where(self.has_b, c["last_ts"][b], c["first_ts"][lo])
        vs = np.where(self.has_b, c["last_value"][b], c["first_value"][lo])
        return ts.astype(np.float64), vs

    def last(self) -> tuple[FloatArray, FloatArray]:
        c, i = self.c, np.where(self.nb > 0, self.hi - 1, self.b)
        return c["last_ts"][i].astype(np.float64), c["last_value"][i]

    def sum_rows(self, name: str) -> FloatArray:
        return _float_sums(self.c[name], self.lo, self.hi)

    def pairs(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-boundary quantity over the boundaries inside each window."""
        if values.dtype == bool:
            return _int_sums(values, self.pair_lo, self.hi)
        return _float_sums(values, self.pair_lo, self.hi)


def _int_sums(values: np.ndarray, lo: IntArray, hi: IntArray) -> IntArray:
    cum = np.r_[0, np.cumsum(values, dtype=np.int64)]
    return cum[hi] - cum[np.minimum(lo, hi)]


def _float_sums(values: FloatArray, lo: IntArray, hi: IntArray, ufunc: np.ufunc = np.add) -> FloatArray:
    """``ufunc`` over ``values[lo[i]:hi[i]]`` for every i, in order (0 where empty)."""
    mask = hi > lo
    padded = np.append(values.astype(np.float64), 0.0)
    # Interleaved (lo, hi) bounds: even positions reduce each window; empty windows give one element
    # (masked below). Bounds stay in place so the odd positions (between windows) stay short.
    bounds = np.stack([lo, np.maximum(hi, lo)], axis=1).ravel()
    out = ufunc.reduceat(padded, np.minimum(bounds, len(values)))[::2]
    return np.where(mask, out, 0.0)


def evaluate(name: str, series: list[BucketSeries], refs: IntArray, range_ms: int) -> VectorBlock | None:
    """``name`` at every step from buckets; None when a value is not finite (use raw samples)."""
    series = [s for s in series if len(s)]
    if not series:
        return VectorBlock([])
    if any(s.columns["nonfinite"].any() for s in series):
        return None
    w = _Windows(series, refs, range_ms)
    with np.errstate(all="ignore"):
        values, mask = _compute(name, w)
    n = len(series)
    values, mask = values.reshape(n, -1), mask.reshape(n, -1)
    keep_name = name == "last_over_time"
    cols = [
        Col(s.labels if keep_name else drop_name(s.labels), values[i], mask[i])
        for i, s in enumerate(series)
        if mask[i].any()
    ]
    # Distinct label sets stay distinct without the name unless the selector matched several names.
    one_name = keep_name or len({s.labels.get("__name__") for s in series}) == 1
    return VectorBlock(cols if one_name else dedupe(cols))


def _compute(name: str, w: _Windows) -> tuple[FloatArray, np.ndarray]:
    present = w.count > 0
    if name in ("rate", "increase", "delta"):
        first_t, first_v = w.first()
        last_t, last_v = w.last()
        result = last_v - first_v
        is_counter = name != "delta"
        if is_counter:
            result = result + (w.sum_rows("correction") + w.pairs(w.cross_correction))
        mask = w.count >= 2
        values = extrapolate(
            result, first_t, last_t, first_v, w.count, w.refs, w.range_ms, is_counter, name == "rate"
        )
        return np.where(mask, values, 0.0), mask
    if name in ("irate", "idelta"):
        return _instant(name == "irate", w)
    if name == "count_over_time":
        return w.count.astype(np.float64), present
    if name == "present_over_time":
        return np.ones(len(w.count)), present
    if name == "last_over_time":
        return w.last()[1], present
    if name in ("sum_over_time", "avg_over_time"):
        total = w.sum_rows("sum") + np.where(w.has_b, w.c["last_value"][w.b], 0.0)
        return (total if name == "sum_over_time" else total / np.maximum(w.count, 1)), present
    if name in ("min_over_time", "max_over_time"):
        ufunc = np.fmin if name == "min_over_time" else np.fmax
        column = "min" if name == "min_over_time" else "max"
        inner = _float_sums(w.c[column], w.lo, w.hi, ufunc)
        edge = w.c["last_value"][w.b]
        out = np.where(w.nb > 0, np.where(w.has_b, ufunc(inner, edge), inner), edge)
        return out, present
    if name == "changes":
        return (_int_sums(w.c["changes"], w.lo, w.hi) + w.pairs(w.cross_change)).astype(np.float64), present
    if name == "resets":
        return (_int_sums(w.c["resets"], w.lo, w.hi) + w.pairs(w.cross_drop)).astype(np.float64), present
    raise ValueError(f"{name} is not computed from rollups")


def _instant(is_rate: bool, w: _Windows) -> tuple[FloatArray, np.ndarray]:
    """irate/idelta: the last two points, the one before the last possibly in an earlier bucket."""
    c = w.c
    last = np.maximum(w.hi - 1, 0)
    last_t, last_v = c["last_ts"][last], c["last_value"][last]
    inside = (w.nb > 0) & (c["count"][last] >= 2)
    before = np.maximum(w.hi - 2, 0)
    # hi - 2 is in the window when it holds two buckets, or one and the start point.
    earlier = (w.nb > 0) & ~inside & ((w.nb >= 2) | w.has_b)
    prev_t = np.where(inside, c["prev_ts"][last], c["last_ts"][before])
    prev_v = np.where(inside, c["prev_value"][last], c["last_value"][before])
    interval = last_t - prev_t
    mask = (inside | earlier) & (interval != 0)
    result = np.where(is_rate & (last_v < prev_v), last_v, last_v - prev_v)
    if is_rate:
        result = result / (interval / 1000.0)
    return np.where(mask, result, 0.0), mask
