"""ClickHouse columns and JSON round-trip a histogram exactly; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketch import (
    ExponentialHistogram,
    from_columns,
    from_dict,
    from_otlp_buckets,
    to_columns,
    to_dict,
    to_native_spans,
    to_otlp_buckets,
)


def _sketch(data: list[float], scale: int = 6) -> ExponentialHistogram:
    h = ExponentialHistogram(scale)
    h.add_many(np.asarray(data, dtype=np.float64))
    return h


values = st.one_of(
    st.floats(min_value=1e-300, max_value=1e300), st.floats(max_value=-1e-300, min_value=-1e300)
)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=1, max_size=100), st.sampled_from([-2, 0, 6, 20]))
def test_columns_and_dict_round_trip(data: list[float], scale: int) -> None:
    h = _sketch(data, scale)
    columns = to_columns(h)
    assert columns.positive_keys.dtype == np.int32
    assert columns.positive_counts.dtype == np.uint64
    assert from_columns(columns).same_as(h, sum_tol=0.0)
    assert from_dict(to_dict(columns)) == columns


def test_adding_columns_key_wise_is_merging() -> None:
    # What ClickHouse's sumMap does to two rows, done by hand: the result is the merged sketch.
    a, b = _sketch([1.0, 2.0, 50.0]), _sketch([2.0, 3.0, -4.0])
    ca, cb = to_columns(a), to_columns(b)
    sums: dict[int, int] = {}
    for keys, counts in ((ca.positive_keys, ca.positive_counts), (cb.positive_keys, cb.positive_counts)):
        for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
            sums[k] = sums.get(k, 0) + c
    a.merge(b)
    assert sorted(sums) == to_columns(a).positive_keys.tolist()
    assert [sums[k] for k in sorted(sums)] == to_columns(a).positive_counts.tolist()


def test_from_dict_refuses_missing_fields() -> None:
    data = to_dict(to_columns(_sketch([1.0])))
    del data["positive_keys"]
    with pytest.raises(ValueError, match="malformed sketch"):
        from_dict(data)


def test_from_columns_refuses_counts_that_do_not_add_up() -> None:
    data = to_dict(to_columns(_sketch([1.0, 2.0])))
    data["count"] = 5
    with pytest.raises(ValueError, match="add up"):
        from_dict(data)


def test_from_columns_refuses_unsorted_keys() -> None:
    data = to_dict(to_columns(_sketch([1.0, 2.0])))
    data["positive_keys"] = data["positive_keys"][::-1]
    with pytest.raises(ValueError, match="sorted"):
        from_dict(data)


def test_otel_sdk_buckets_at_scale_six_are_ours_bucket_for_bucket() -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.metrics")
    export = pytest.importorskip("opentelemetry.sdk.metrics.export")
    view = pytest.importorskip("opentelemetry.sdk.metrics.view")
    reader = export.InMemoryMetricReader()
    aggregation = view.ExponentialBucketHistogramAggregation(max_size=16_384, max_scale=6)
    provider = sdk.MeterProvider(
        metric_readers=[reader], views=[view.View(instrument_type=sdk.Histogram, aggregation=aggregation)]
    )
    data = np.random.default_rng(8).lognormal(4.0, 1.0, 2_000)
    record = provider.get_meter("t").create_histogram("ttft").record
    for value in data.tolist():
        record(value)
    point = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
    provider.shutdown()
    ours = to_columns(_sketch(data.tolist()))
    assert point.scale == 6
    keys, counts = from_otlp_buckets(point.positive.offset, point.positive.bucket_counts)
    np.testing.assert_array_equal(keys, ours.positive_keys)
    np.testing.assert_array_equal(counts, ours.positive_counts)
    offset, dense = to_otlp_buckets(ours.positive_keys, ours.positive_counts)
    theirs = list(point.positive.bucket_counts)
    assert offset == point.positive.offset
    assert dense == theirs[: len(dense)]
    assert not any(theirs[len(dense) :])  # the SDK may send trailing empty buckets


def test_native_spans_shift_the_index_and_delta_encode() -> None:
    keys = np.array([-3, -2, 0, 1, 2, 7], dtype=np.int32)
    counts = np.array([2, 1, 4, 4, 1, 3], dtype=np.uint64)
    spans, deltas = to_native_spans(keys, counts)
    # Prometheus indexes -2,-1 | 1,2,3 | 8: first offset absolute, then gaps of 1 and 4.
    assert spans == [(-2, 2), (1, 3), (4, 1)]
    assert deltas == [2, -1, 3, 0, -3, 2]
    assert to_native_spans(np.empty(0, np.int32), np.empty(0, np.uint64)) == ([], [])


def test_adding_to_a_decoded_histogram_leaves_the_columns_alone() -> None:
    columns = to_columns(_sketch([1.0, 2.0, 3.0]))
    before = columns.positive_counts.copy()
    decoded = from_columns(columns)
    decoded.add_many(np.array([1.0, 2.0, 3.0]))  # every bucket exists: the in-place path
    np.testing.assert_array_equal(columns.positive_counts, before)
