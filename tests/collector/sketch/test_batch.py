"""Sketching many windows in one pass gives exactly the per-window sketches; merging columns = merging."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.sketch import ExponentialHistogram, to_columns
from collector.sketch.batch import merge_columns, sketch_groups

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
        assert columns.sum == pytest.approx(exp.sum, rel=1e-9, abs=1e-300)
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
