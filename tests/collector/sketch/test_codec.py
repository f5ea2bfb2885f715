"""ClickHouse columns and JSON round-trip a histogram exactly; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.sketch import ExponentialHistogram, from_columns, from_dict, to_columns, to_dict


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
    assert from_columns(columns).same_as(h, sum_rel_tol=0.0)
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
