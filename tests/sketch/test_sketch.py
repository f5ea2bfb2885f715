"""The sketch's guarantees, as properties: relative error, merge laws, windows = one sketch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketch import ExponentialHistogram, relative_error

QS = [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0]

# Subnormals share one bucket (as in the OTel SDK), so the bound is stated for normal magnitudes.
magnitudes = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)
values = st.one_of(magnitudes, magnitudes.map(lambda v: -v), st.just(0.0))
value_lists = st.lists(values, min_size=1, max_size=200)
scales = st.sampled_from([0, 2, 6, 8])


def _sketch(data: list[float] | np.ndarray, scale: int = 6) -> ExponentialHistogram:
    h = ExponentialHistogram(scale)
    h.add_many(np.asarray(data, dtype=np.float64))
    return h


def _assert_within_bound(h: ExponentialHistogram, data: np.ndarray, qs: list[float]) -> None:
    exact = np.quantile(data, qs, method="inverted_cdf")
    got = h.quantiles(qs)
    # The bound, plus a few ulps for ln()/exp2() rounding at bucket edges.
    bound = h.relative_error * np.abs(exact) * (1 + 1e-9)
    assert np.all(np.abs(got - exact) <= bound), (qs, exact, got)


@settings(max_examples=200, deadline=None)
@given(value_lists, scales)
def test_quantile_error_is_within_alpha_of_the_value(data: list[float], scale: int) -> None:
    _assert_within_bound(_sketch(data, scale), np.asarray(data), QS)


@settings(max_examples=100, deadline=None)
@given(value_lists, value_lists, value_lists)
def test_merge_is_commutative_and_associative(a: list[float], b: list[float], c: list[float]) -> None:
    ab = _sketch(a)
    ab.merge(_sketch(b))
    ba = _sketch(b)
    ba.merge(_sketch(a))
    assert ab.same_as(ba)
    ab_c = ab.copy()
    ab_c.merge(_sketch(c))
    bc = _sketch(b)
    bc.merge(_sketch(c))
    a_bc = _sketch(a)
    a_bc.merge(bc)
    assert ab_c.same_as(a_bc)


@settings(max_examples=100, deadline=None)
@given(st.lists(value_lists, min_size=1, max_size=12))
def test_merged_windows_equal_one_sketch_of_all_values(windows: list[list[float]]) -> None:
    everything = [v for window in windows for v in window]
    one = _sketch(everything)
    pairwise = ExponentialHistogram()
    for window in windows:
        pairwise.merge(_sketch(window))
    assert pairwise.same_as(one)
    assert ExponentialHistogram.merged(_sketch(w) for w in windows).same_as(one)
    _assert_within_bound(pairwise, np.asarray(everything), QS)


@settings(max_examples=50, deadline=None)
@given(value_lists, st.integers(min_value=1, max_value=6))
def test_downscaled_sketch_equals_sketch_at_the_lower_scale(data: list[float], by: int) -> None:
    assert _sketch(data, 6).downscaled(6 - by).same_as(_sketch(data, 6 - by))


def test_merge_with_a_coarser_sketch_lowers_the_scale() -> None:
    fine, coarse = _sketch([1.0, 2.0, 3.0], 6), _sketch([4.0, 5.0], 3)
    fine.merge(coarse)
    assert fine.scale == 3
    assert fine.same_as(_sketch([1.0, 2.0, 3.0, 4.0, 5.0], 3))


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(11).lognormal(math.log(120.0), 1.0, 200_000),  # TTFT-like, ms
        (np.random.default_rng(12).pareto(1.5, 200_000) + 1.0) * 20.0,  # heavy tail
        np.random.default_rng(13).normal(0.0, 50.0, 200_000),  # both signs
    ],
    ids=["lognormal", "pareto", "normal"],
)
def test_tail_quantiles_within_one_percent(data: np.ndarray) -> None:
    qs = [0.5, 0.9, 0.99, 0.999]
    windows = np.array_split(data, 1000)
    merged = ExponentialHistogram.merged(_sketch(w) for w in windows)
    exact = np.quantile(data, qs, method="inverted_cdf")
    assert np.all(np.abs(merged.quantiles(qs) - exact) <= 0.01 * np.abs(exact))
    _assert_within_bound(merged, data, qs)


def test_rank_convention_is_inverted_cdf() -> None:
    h = _sketch(np.arange(1.0, 11.0))
    # rank ceil(q·n): q=0.5 → 5th value, q=0.51 → 6th, q=0 → min, q=1 → max.
    got = h.quantiles([0.5, 0.51, 0.0, 1.0, 0.05])
    assert got[0] == pytest.approx(5.0, rel=relative_error(6))
    assert got[1] == pytest.approx(6.0, rel=relative_error(6))
    assert got[2:4].tolist() == [1.0, 10.0]  # exact at the ends
    assert got[4] == 1.0  # rank ceil(0.5) = 1 → min


def test_count_sum_min_max_and_skipped_values() -> None:
    h = ExponentialHistogram()
    added = h.add_many(np.array([3.0, np.nan, -2.0, 0.0, np.inf, 7.0]))
    assert added == 4
    assert (h.count, h.sum, h.min, h.max, h.zero_count) == (4, 8.0, -2.0, 7.0, 1)
    assert h.add(float("nan")) is False
    assert h.add(1.5) is True


def test_empty_sketch_has_no_quantiles() -> None:
    h = ExponentialHistogram()
    assert math.isnan(h.quantile(0.5))
    assert h.add_many(np.array([])) == 0


@pytest.mark.parametrize("q", [-0.1, 1.1, float("nan")])
def test_rejects_quantile_outside_unit_interval(q: float) -> None:
    with pytest.raises(ValueError, match="quantiles"):
        _sketch([1.0]).quantile(q)


def test_memory_grows_with_spread_not_with_count() -> None:
    h = ExponentialHistogram()
    for _ in range(10):
        h.add_many(np.random.default_rng(5).uniform(1.0, 2.0, 100_000))
    assert len(h.positive) <= 65  # one doubling = 64 buckets at scale 6
    assert h.size_bytes <= 65 * 16
