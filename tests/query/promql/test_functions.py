"""Function arithmetic at the unit level: histogram edges, quantiles, extrapolation, templates."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query.promql.engine import Engine
from query.promql.functions import _expand
from query.promql.histogram import bucket_quantile
from query.promql.kernels import extrapolated_rates
from query.promql.range_functions import quantile
from query.promql.value import format_float
from store.memory import MemoryStore
from tests.query.promql import go_rate

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [(1.0, 5.0), (2.0, 10.0), (INF, 10.0)], 1.0),
        (0.9, [(1.0, 5.0), (2.0, 10.0), (INF, 10.0)], 1.8),
        (0.99, [(1.0, 5.0), (2.0, 9.0), (INF, 10.0)], 2.0),  # in the +Inf bucket: highest finite bound
        (0.5, [(1.0, 5.0), (2.0, 10.0)], math.nan),  # no +Inf bucket
        (0.5, [(INF, 10.0)], math.nan),  # fewer than two buckets
        (0.5, [(1.0, 0.0), (INF, 0.0)], math.nan),  # no observations
        (-0.1, [(1.0, 5.0), (INF, 10.0)], -INF),
        (1.1, [(1.0, 5.0), (INF, 10.0)], INF),
        (0.1, [(-1.0, 5.0), (INF, 10.0)], -1.0),  # first bucket's bound <= 0 is returned as is
        (0.5, [(1.0, 8.0), (2.0, 6.0), (INF, 10.0)], 0.625),  # non-monotonic counts are fixed up
        (0.5, [(1.0, 2.0), (1.0, 2.0), (INF, 8.0)], 1.0),  # equal bounds merge: 4 of 8 <= 1
    ],
)
def test_bucket_quantile(q: float, buckets: list[tuple[float, float]], expected: float) -> None:
    got = bucket_quantile(q, buckets)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_quantile_interpolates_and_sorts_nan_first() -> None:
    assert quantile(0.5, [1.0, 2.0, 3.0, 4.0]) == 2.5
    assert math.isnan(quantile(0.0, [1.0, math.nan]))
    assert math.isnan(quantile(0.5, []))


def test_rate_extrapolates_to_the_window_edges() -> None:
    ts = np.array([15_000, 45_000])
    vs = np.array([10.0, 40.0])
    # 30 s sampled, 15 s to each edge (< 1.1 * 30 s): delta extrapolates to the full 60 s window.
    assert extrapolated_rate(ts, vs, 60_000, 60_000, False, False) == pytest.approx(60.0)
    # A counter's zero point is 10 s before the first sample, so it extrapolates only 10 s back.
    assert extrapolated_rate(ts, vs, 60_000, 60_000, True, False) == pytest.approx(55.0)
    assert extrapolated_rate(ts, vs, 60_000, 60_000, True, True) == pytest.approx(55.0 / 60)


def test_increase_does_not_extrapolate_below_zero() -> None:
    ts = np.array([50_000, 60_000])
    vs = np.array([1.0, 11.0])
    # Zero point is 1 s before the first sample, nearer than the 50 s gap to the window start.
    assert extrapolated_rate(ts, vs, 60_000, 60_000, True, False) == pytest.approx(11.0)


def test_rate_handles_counter_resets() -> None:
    ts = np.array([0, 10_000, 20_000, 30_000])
    vs = np.array([5.0, 10.0, 2.0, 4.0])
    assert extrapolated_rate(ts, vs, 30_000, 30_000, True, False) == pytest.approx(4 - 5 + 10)


def extrapolated_rate(
    ts: np.ndarray, vs: np.ndarray, ref_ms: int, range_ms: int, is_counter: bool, is_rate: bool
) -> float | None:
    """One window through the compiled loop."""
    starts, refs = np.array([0, len(ts)]), np.array([ref_ms])
    values, mask = extrapolated_rates(ts, vs, starts, refs, range_ms, is_counter, is_rate)
    return float(values[0, 0]) if mask[0, 0] else None


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=0, max_size=40),
    st.booleans(),
    st.sampled_from([None, math.nan, math.inf, -math.inf]),
)
def test_compiled_rate_equals_prometheus_window_by_window(
    increments: list[int], counter: bool, odd: float | None
) -> None:
    values = np.cumsum(np.array(increments, dtype=np.float64))
    if counter and len(values) > 3:
        values[len(values) // 2 :] -= values[len(values) // 2 - 1]  # a reset in the middle
    if odd is not None and len(values) > 2:
        values[len(values) // 3] = odd
    ts = np.arange(len(values), dtype=np.int64) * 10_000 + 1234
    refs = np.arange(0, len(values) * 10_000 + 60_000, 7_000, dtype=np.int64)
    lo = np.searchsorted(ts, refs - 60_000, "left")
    hi = np.searchsorted(ts, refs, "right")
    cols, mask = extrapolated_rates(ts, values, np.array([0, len(ts)]), refs, 60_000, counter, True)
    for i, ref in enumerate(refs.tolist()):
        one = go_rate.extrapolated_rate(ts[lo[i] : hi[i]], values[lo[i] : hi[i]], ref, 60_000, counter, True)
        assert mask[0, i] == (one is not None)
        if one is not None:
            assert cols[0, i] == one or (math.isnan(cols[0, i]) and math.isnan(one))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_float_round_trips(value: float) -> None:
    text = format_float(value)
    assert "e" not in text
    assert float(text) == value


@pytest.mark.parametrize(
    ("template", "expected"),
    [("$1", "ab"), ("${1}x", "abx"), ("$1x", ""), ("$name-$2", "ab-c"), ("$$1", "$1"), ("a$", "a$")],
)
def test_label_replace_template_expansion_is_gos(template: str, expected: str) -> None:
    match = re.match(r"(?P<name>ab)(c)", "abc")
    assert match is not None
    assert _expand(template, match) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("round(vector(2.5))", 3.0),
        ("round(vector(-2.5))", -2.0),
        ("round(vector(7), 5)", 5.0),
        ("clamp(vector(5), 0, 3)", 3.0),
        ("clamp_min(vector(-1), 0)", 0.0),
        ("year(vector(-1))", 1969.0),
        ("day_of_week(vector(0))", 4.0),
        ("days_in_month(vector(3000000))", 28.0),  # 1970-02-04
        ("sgn(vector(-3))", -1.0),
        ("scalar(vector(4)) * 2", 8.0),
    ],
)
def test_instant_functions(query: str, expected: float) -> None:
    result = Engine(MemoryStore()).instant(query, 0)
    value = result.value if hasattr(result, "value") else result.samples[0].value  # type: ignore[union-attr]
    assert value == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 1.0, -2.5, 7.0, math.nan, math.inf, -math.inf]), min_size=1, max_size=30),
    st.sampled_from(["max_over_time", "min_over_time", "count_over_time", "last_over_time"]),
)
def test_columnar_window_reducers_equal_per_step(values: list[float], fn: str) -> None:
    store = MemoryStore()
    for i, v in enumerate(values):
        store.append({"__name__": "g"}, i * 10_000, v)
    engine = Engine(store)
    query = f"{fn}(g[35s])"
    matrix = engine.range(query, 0, len(values) * 10_000 + 40_000, 7_000)
    got = dict(zip(matrix.series[0].ts_ms.tolist(), matrix.series[0].values.tolist(), strict=True))
    for t in range(0, len(values) * 10_000 + 40_001, 7_000):
        instant = engine.instant(query, t).samples  # type: ignore[union-attr]
        assert (t in got) == bool(instant)
        if instant:
            expected = instant[0].value
            assert (math.isnan(expected) and math.isnan(got[t])) or expected == got[t]
