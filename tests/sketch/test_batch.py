"""Sketching many windows in one pass gives exactly the per-window sketches; merging columns = merging."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketch import ExponentialHistogram, to_columns
from sketch.batch import merge_columns, quantiles_many, sketch_groups

magnitudes = st.floats(min_value=1e-300, max_value=1e300)
values = st.one_of(magnitudes, magnitudes.map(lambda v: -v), st.just(0.0), st.just(float("nan")))
groups = st.lists(st.lists(values, max_size=30), min_size=1, max_size=20)


def _sketch(data: list[float], scale: int = 6) -> ExponentialHistogram:
    h = ExponentialHistogram(scale)
    h.add_many(np.asarray(data, dtype=np.float64))
    return h


@settings(max_examples=150, deadline=None)
@given(groups, st.sampled_from([0, 6, 12]))
def test_groups_equal_one_sketch_each(windows: list[list[float]], scale: int) -> None:
    flat = np.asarray([v for w in windows for v in w], dtype=np.float64)
    got = sketch_groups(flat, [len(w) for w in windows], scale)
    for window, columns in zip(windows, got, strict=True):
        expected = _sketch(window, scale)
        if expected.count == 0:
            assert columns is None
            continue
        assert columns is not None
        exp = to_columns(expected)
        for name in ("scale", "count", "min", "max", "zero_count"):
            assert getattr(columns, name) == getattr(exp, name)
        # Float sums depend on addition order; with both signs only a magnitude-scaled bound holds.
        assert abs(columns.sum - exp.sum) <= 1e-12 * exp.count * max(abs(exp.min), abs(exp.max))
        for name in ("positive_keys", "positive_counts", "negative_keys", "negative_counts"):
            np.testing.assert_array_equal(getattr(columns, name), getattr(exp, name))
            assert getattr(columns, name).dtype == getattr(exp, name).dtype


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(magnitudes, min_size=1, max_size=30), min_size=1, max_size=20))
def test_merge_columns_equals_merged_sketch(windows: list[list[float]]) -> None:
    merged = merge_columns([to_columns(_sketch(w)) for w in windows])
    expected = to_columns(_sketch([v for w in windows for v in w]))
    assert merged.count == expected.count
    np.testing.assert_array_equal(merged.positive_keys, expected.positive_keys)
    np.testing.assert_array_equal(merged.positive_counts, expected.positive_counts)
    assert (merged.min, merged.max) == (expected.min, expected.max)


def test_lengths_must_cover_the_values() -> None:
    with pytest.raises(ValueError, match="add up"):
        sketch_groups(np.array([1.0, 2.0]), [1])


def test_merge_columns_needs_one_scale() -> None:
    with pytest.raises(ValueError, match="one scale"):
        merge_columns([to_columns(_sketch([1.0], 6)), to_columns(_sketch([1.0], 5))])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(values, min_size=1, max_size=40), min_size=1, max_size=15))
def test_quantiles_many_equal_each_sketchs_quantiles(windows: list[list[float]]) -> None:
    qs = [0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0]
    sketches = [_sketch(w) for w in windows]
    columns = [to_columns(s) for s in sketches if s.count]
    expected = np.array([s.quantiles(qs) for s in sketches if s.count]).reshape(len(columns), len(qs))
    np.testing.assert_array_equal(quantiles_many(columns, qs), expected)


def test_quantiles_many_of_nothing_and_bad_input() -> None:
    assert quantiles_many([], [0.5]).shape == (0, 1)
    with pytest.raises(ValueError, match="one scale"):
        quantiles_many([to_columns(_sketch([1.0], 6)), to_columns(_sketch([1.0], 5))], [0.5])
    with pytest.raises(ValueError, match="quantiles"):
        quantiles_many([to_columns(_sketch([1.0]))], [2.0])
