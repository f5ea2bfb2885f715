"""Functions over range vectors (``rate``, ``*_over_time``, …) with Prometheus 2.42 arithmetic.

Each function sees one window at a time: the points of one series in ``[ref - range, ref]``.
``rate``/``increase``/``delta`` are also computed column-wise for long range queries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from query.promql import budget
from query.promql.blocks import (
    Block,
    Col,
    FloatArray,
    IntArray,
    RangeBlock,
    ScalarBlock,
    VectorBlock,
    dedupe,
    laid_end_to_end,
    reduce_windows,
)
from query.promql.blocks import drop_name as _drop_name
from query.promql.errors import PromQLError
from query.promql.gomath import go_div, kahan_inc, kahan_sum
from query.promql.kernels import extrapolated_rates


@dataclass(frozen=True, slots=True)
class Window:
    """Where a window sits: its end ``ref_ms``, its length, the step time, the step's scalar params."""

    ref_ms: int
    range_ms: int
    step_ms: int
    params: tuple[float, ...]


RangeFn = Callable[[IntArray, FloatArray, Window], float | None]


def _kahan_sum(values: FloatArray) -> float:
    total, comp = kahan_sum(values.tolist())
    return total if math.isinf(total) else total + comp


def _avg(ts: IntArray, vs: FloatArray, w: Window) -> float:
    mean, count, comp = 0.0, 0, 0.0
    for v in vs.tolist():
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, comp = kahan_inc(v / count - mean / count, mean, comp)
    return mean if math.isinf(mean) else mean + comp


def _min(ts: IntArray, vs: FloatArray, w: Window) -> float:
    out = float(vs[0])
    for v in vs.tolist():
        if out > v or math.isnan(out):
            out = v
    return out


def _max(ts: IntArray, vs: FloatArray, w: Window) -> float:
    out = float(vs[0])
    for v in vs.tolist():
        if out < v or math.isnan(out):
            out = v
    return out


def _variance(vs: FloatArray) -> float:
    count, mean, c_mean, aux, c_aux = 0.0, 0.0, 0.0, 0.0, 0.0
    for v in vs.tolist():
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def quantile(q: float, values: list[float]) -> float:
    """Prometheus' ``quantile``: NaNs sort first, linear interpolation between closest ranks."""
    if not values:
        return math.nan
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = [v for v in values if math.isnan(v)] + sorted(v for v in values if not math.isnan(v))
    n = len(ordered)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def _changes(ts: IntArray, vs: FloatArray, w: Window) -> float:
    out, prev = 0, float(vs[0])
    for v in vs[1:].tolist():
        if v != prev and not (math.isnan(v) and math.isnan(prev)):
            out += 1
        prev = v
    return float(out)


def _resets(ts: IntArray, vs: FloatArray, w: Window) -> float:
    return float(np.count_nonzero(vs[1:] < vs[:-1]))


def _instant_value(is_rate: bool) -> RangeFn:
    def fn(ts: IntArray, vs: FloatArray, w: Window) -> float | None:
        if len(vs) < 2:
            return None
        last, prev = float(vs[-1]), float(vs[-2])
        result = last if is_rate and last < prev else last - prev
        interval = int(ts[-1]) - int(ts[-2])
        if interval == 0:
            return None
        return result / (interval / 1000.0) if is_rate else result

    return fn


def linear_regression(ts: IntArray, vs: FloatArray, intercept_ms: int) -> tuple[float, float]:
    """Least-squares slope (per second) and intercept at ``intercept_ms``, as Prometheus 2.42."""
    init = float(vs[0])
    if bool(np.all(vs == init)):
        if math.isinf(init):
            return math.nan, math.nan
        return 0.0, init
    x = ((ts - intercept_ms) / 1e3).tolist()
    y = vs.tolist()
    n = float(len(y))
    with np.errstate(all="ignore"):
        sum_x = sum(kahan_sum(x))
        sum_y = sum(kahan_sum(y))
        sum_xy = sum(kahan_sum([a * b for a, b in zip(x, y, strict=True)]))
        sum_x2 = sum(kahan_sum([a * a for a in x]))
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = go_div(cov_xy, var_x)
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def _deriv(ts: IntArray, vs: FloatArray, w: Window) -> float | None:
    if len(vs) < 2:
        return None
    return linear_regression(ts, vs, int(ts[0]))[0]


def _predict_linear(ts: IntArray, vs: FloatArray, w: Window) -> float | None:
    if len(vs) < 2:
        return None
    slope, intercept = linear_regression(ts, vs, w.step_ms)
    return slope * w.params[0] + intercept


def _holt_winters(ts: IntArray, vs: FloatArray, w: Window) -> float | None:
    sf, tf = w.params
    if not 0 < sf < 1:
        raise PromQLError("execution", f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if not 0 < tf < 1:
        raise PromQLError("execution", f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")
    values = vs.tolist()
    if len(values) < 2:
        return None
    s0, s1, b = 0.0, values[0], values[1] - values[0]
    for i in range(1, len(values)):
        x = sf * values[i]
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


def _rate_fn(is_counter: bool, is_rate: bool) -> RangeFn:
    def fn(ts: IntArray, vs: FloatArray, w: Window) -> float | None:
        starts, refs = np.array([0, len(ts)]), np.array([w.ref_ms])
        values, mask = extrapolated_rates(ts, vs, starts, refs, w.range_ms, is_counter, is_rate)
        return float(values[0, 0]) if mask[0, 0] else None

    return fn


RANGE_FUNCTIONS: dict[str, RangeFn] = {
    "rate": _rate_fn(True, True),
    "increase": _rate_fn(True, False),
    "delta": _rate_fn(False, False),
    "irate": _instant_value(True),
    "idelta": _instant_value(False),
    "avg_over_time": _avg,
    "min_over_time": _min,
    "max_over_time": _max,
    "sum_over_time": lambda ts, vs, w: _kahan_sum(vs),
    "count_over_time": lambda ts, vs, w: float(len(vs)),
    "last_over_time": lambda ts, vs, w: float(vs[-1]),
    "present_over_time": lambda ts, vs, w: 1.0,
    "quantile_over_time": lambda ts, vs, w: quantile(w.params[0], vs.tolist()),
    "stddev_over_time": lambda ts, vs, w: math.sqrt(_variance(vs)),
    "stdvar_over_time": lambda ts, vs, w: _variance(vs),
    "changes": _changes,
    "resets": _resets,
    "deriv": _deriv,
    "predict_linear": _predict_linear,
    "holt_winters": _holt_winters,
}
_COLUMNAR = {"rate": (True, True), "increase": (True, False), "delta": (False, False)}
# Functions whose per-window value numpy gives exactly: NaN-skipping fmax/fmin are Prometheus'
# "replace while NaN" min/max; count, last and present need only the window bounds.
_WINDOW_REDUCERS = {"max_over_time": np.fmax, "min_over_time": np.fmin, "count_over_time": None}
_WINDOW_REDUCERS |= {"last_over_time": None, "present_over_time": None}


def _reduce_windows(name: str, sv: FloatArray, lo: IntArray, hi: IntArray) -> tuple[FloatArray, np.ndarray]:
    """All windows ``[lo[i], hi[i])`` of one series at once for the ``_WINDOW_REDUCERS``."""
    mask = hi > lo
    if name == "count_over_time":
        return (hi - lo).astype(np.float64), mask
    if name == "present_over_time":
        return np.ones(len(lo)), mask
    if name == "last_over_time":
        return sv[np.maximum(hi - 1, 0)], mask
    ufunc = _WINDOW_REDUCERS[name]
    assert ufunc is not None  # only min/max get here
    return reduce_windows(sv, lo, hi, ufunc), mask


def evaluate(name: str, args: list[Block], ts: IntArray) -> VectorBlock:
    """Apply range function ``name`` at every step; the metric name is dropped but by last_over_time."""
    rng_idx = next(i for i, a in enumerate(args) if isinstance(a, RangeBlock))
    rng = args[rng_idx]
    assert isinstance(rng, RangeBlock)
    scalars = [a.values for a in args if isinstance(a, ScalarBlock)]
    if name in _COLUMNAR:
        return _rate_all_series(name, rng)
    fn = RANGE_FUNCTIONS[name]
    cols = []
    lo_bound = rng.refs - rng.range_ms
    for s in rng.series:
        budget.tick()
        lo = np.searchsorted(s.ts, lo_bound, "left")
        hi = np.searchsorted(s.ts, rng.refs, "right")
        if not (hi > lo).any():
            continue
        if name in _WINDOW_REDUCERS and len(ts) > 1:
            values, mask = _reduce_windows(name, s.values, lo, hi)
        else:
            values, mask = _per_step(fn, s.ts, s.values, lo, hi, rng, ts, scalars)
        labels = s.labels if name == "last_over_time" else _drop_name(s.labels)
        cols.append(Col(labels, values, mask))
    return VectorBlock(dedupe(cols))


def _rate_all_series(name: str, rng: RangeBlock) -> VectorBlock:
    """``rate``/``increase``/``delta`` of every series at every step, in one compiled pass."""
    series = [s for s in rng.series if len(s.ts)]
    if not series:
        return VectorBlock([])
    starts = np.cumsum([0] + [len(s.ts) for s in series], dtype=np.int64)
    all_ts = laid_end_to_end([s.ts for s in series])
    all_vs = laid_end_to_end([s.values for s in series])
    values, mask = extrapolated_rates(all_ts, all_vs, starts, rng.refs, rng.range_ms, *_COLUMNAR[name])
    cols = [
        Col(_drop_name(series[i].labels), values[i], mask[i])
        for i in np.flatnonzero(mask.any(axis=1)).tolist()
    ]
    # Distinct label sets stay distinct without the name unless the selector matched several names.
    one_name = len({s.labels.get("__name__") for s in series}) == 1
    return VectorBlock(cols if one_name else dedupe(cols))


def _per_step(
    fn: RangeFn,
    st: IntArray,
    sv: FloatArray,
    lo: IntArray,
    hi: IntArray,
    rng: RangeBlock,
    ts: IntArray,
    scalars: list[FloatArray],
) -> tuple[FloatArray, np.ndarray]:
    values = np.zeros(len(ts))
    mask = np.zeros(len(ts), dtype=bool)
    with np.errstate(all="ignore"):
        for i in np.flatnonzero(hi > lo).tolist():
            budget.tick()
            a, b = int(lo[i]), int(hi[i])
            w = Window(int(rng.refs[i]), rng.range_ms, int(ts[i]), tuple(float(p[i]) for p in scalars))
            out = fn(st[a:b], sv[a:b], w)
            if out is not None:
                values[i] = out
                mask[i] = True
    return values, mask
