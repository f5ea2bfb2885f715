"""Range functions composed from rollup buckets instead of raw samples (``store.rollups``).

A window ``[ref - range, ref]`` whose ends are multiples of the bucket width ``W`` holds exactly the
points of the buckets ending in ``(ref - range, ref]`` plus, if there is one, the point at
``ref - range`` itself: the last point of the bucket ending there. Every function here needs only
per-bucket aggregates and the two points at each bucket boundary (for counter resets and changes
between buckets), so its value is Prometheus' up to floating-point summation order (sums of
per-bucket sums rather than one running sum: ~1e-15 relative).

Used for the functions in ``FUNCTIONS`` over a plain matrix selector when the range and every step
time are multiples of a width the store keeps (``model.rollups.widest_tiling``). A selection
holding NaN or ±Inf goes back to raw samples (``evaluate`` returns None): Prometheus' special cases
for those are kept by the per-point code.
"""

from __future__ import annotations

import numpy as np

from model.rollups import Buckets
from query.promql.blocks import (
    Col,
    FloatArray,
    IntArray,
    VectorBlock,
    dedupe,
    drop_name,
    label_key,
    reduce_windows,
)
from query.promql.rate import extrapolate

# The bucket columns each function needs besides ``model.rollups.BASE_COLUMNS``.
_EDGES = ("first_ts", "first_value")
COLUMNS: dict[str, tuple[str, ...]] = {
    "rate": (*_EDGES, "correction"),
    "increase": (*_EDGES, "correction"),
    "delta": _EDGES,
    "irate": ("prev_ts", "prev_value"),
    "idelta": ("prev_ts", "prev_value"),
    "count_over_time": (),
    "sum_over_time": ("sum",),
    "avg_over_time": ("sum",),
    "min_over_time": ("min",),
    "max_over_time": ("max",),
    "last_over_time": (),
    "present_over_time": (),
    "changes": ("first_value", "changes"),
    "resets": ("first_value", "resets"),
}
FUNCTIONS = frozenset(COLUMNS)


class _Windows:
    """Every (series, step) window as index ranges into all series' buckets laid end to end."""

    def __init__(self, buckets: Buckets, refs: IntArray, range_ms: int) -> None:
        cols = self.c = buckets.columns
        ends, starts = buckets.end_ms, buckets.starts
        n, steps = len(buckets.labels), len(refs)
        lo = np.empty((n, steps), dtype=np.int64)
        hi = np.empty((n, steps), dtype=np.int64)
        for i in range(n):  # series by series: one series' buckets stay in cache
            a, b = int(starts[i]), int(starts[i + 1])
            lo[i] = np.searchsorted(ends[a:b], refs - range_ms, "right") + a
            hi[i] = np.searchsorted(ends[a:b], refs, "right") + a
        first_row = np.repeat(starts[:-1], steps)
        self.lo, self.hi = lo.ravel(), hi.ravel()
        self.refs = np.tile(refs, n)
        self.range_ms = range_ms
        start = self.refs - range_ms
        before = np.maximum(self.lo - 1, 0)
        # The point exactly at the window's start: the last point of the bucket ending there.
        self.has_b = (self.lo > first_row) & (ends[before] == start) & (cols["last_ts"][before] == start)
        self.b = before
        self.nb = self.hi - self.lo
        self.count = _int_sums(cols["count"], self.lo, self.hi) + self.has_b
        # Bucket pairs inside the window: from the first bucket (or the start point) to the last.
        self.pair_lo = np.where(self.nb > 0, self.lo + 1 - self.has_b, self.hi)
        # Row j follows row j - 1 of the same series (its first row follows nothing).
        self._follows = np.ones(len(ends), dtype=bool)
        self._follows[starts[:-1][starts[:-1] < len(ends)]] = False

    def _prev_last(self) -> FloatArray:
        last_v = self.c["last_value"]
        return np.r_[0.0, last_v[:-1]] if len(last_v) else last_v

    def cross_drops(self) -> np.ndarray:
        """Per row: the value dropped from the previous bucket's last point (a counter reset)."""
        return self._follows & (self.c["first_value"] < self._prev_last())

    def cross_changes(self) -> np.ndarray:
        return self._follows & (self.c["first_value"] != self._prev_last())

    def cross_correction(self) -> FloatArray:
        return np.where(self.cross_drops(), self._prev_last(), 0.0)

    def correction(self) -> FloatArray:
        """Counter-reset corrections inside each window (zeros without a reset: the usual case)."""
        out = np.zeros(len(self.lo))
        if self.c["correction"].any():
            out += self.sum_rows("correction")
        cross = self.cross_correction()
        if cross.any():
            out += self.pairs(cross)
        return out

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
        return reduce_windows(self.c[name], self.lo, self.hi)

    def pairs(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-boundary quantity over the boundaries inside each window."""
        if values.dtype == bool:
            return _int_sums(values, self.pair_lo, self.hi)
        return reduce_windows(values, self.pair_lo, self.hi)


def _int_sums(values: np.ndarray, lo: IntArray, hi: IntArray) -> IntArray:
    cum = np.r_[0, np.cumsum(values, dtype=np.int64)]
    return cum[hi] - cum[np.minimum(lo, hi)]


def evaluate(name: str, buckets: Buckets, refs: IntArray, range_ms: int) -> VectorBlock | None:
    """``name`` at every step from buckets; None when a value is not finite (use raw samples)."""
    if not len(buckets):
        return VectorBlock([])
    if buckets.columns["nonfinite"].any():
        return None
    w = _Windows(buckets, refs, range_ms)
    with np.errstate(all="ignore"):
        values, mask = _compute(name, w)
    n = len(buckets.labels)
    values, mask = values.reshape(n, -1), mask.reshape(n, -1)
    keep_name = name == "last_over_time"
    # In the order Prometheus' storage yields series: by labels.
    order = sorted(range(n), key=lambda i: label_key(buckets.labels[i]))
    cols = [
        Col(buckets.labels[i] if keep_name else drop_name(buckets.labels[i]), values[i], mask[i])
        for i in order
        if mask[i].any()
    ]
    # Distinct label sets stay distinct without the name unless the selector matched several names.
    one_name = keep_name or len({labels.get("__name__") for labels in buckets.labels}) == 1
    return VectorBlock(cols if one_name else dedupe(cols))


def _compute(name: str, w: _Windows) -> tuple[FloatArray, np.ndarray]:
    present = w.count > 0
    if name in ("rate", "increase", "delta"):
        first_t, first_v = w.first()
        last_t, last_v = w.last()
        result = last_v - first_v
        is_counter = name != "delta"
        if is_counter:
            result = result + w.correction()
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
        inner = reduce_windows(w.c[column], w.lo, w.hi, ufunc)
        edge = w.c["last_value"][w.b]
        out = np.where(w.nb > 0, np.where(w.has_b, ufunc(inner, edge), inner), edge)
        return out, present
    if name == "changes":
        return (_int_sums(w.c["changes"], w.lo, w.hi) + w.pairs(w.cross_changes())).astype(
            np.float64
        ), present
    if name == "resets":
        return (_int_sums(w.c["resets"], w.lo, w.hi) + w.pairs(w.cross_drops())).astype(np.float64), present
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
