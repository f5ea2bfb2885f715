"""The writer's compiled passes against plain-Python statements of what each must return."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from store.write_kernels import DAY_MS, first_unknown_days, gather_columns, order_by_series

# A batch: per sample (slot, timestamp), over a few slots and a few days (negative ones too), with
# a subset of positions kept.
batches = st.integers(1, 6).flatmap(
    lambda n_slots: st.lists(
        st.tuples(
            st.integers(0, n_slots - 1),
            st.integers(-2, 2).map(lambda d: d * DAY_MS) | st.integers(-3 * DAY_MS, 3 * DAY_MS),
            st.booleans(),
        ),
        max_size=60,
    ).map(lambda rows: (n_slots, rows))
)


def _columns(rows: list[tuple[int, int, bool]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    slots = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.int64)
    keep = np.array([r[2] for r in rows], np.bool_)
    return slots, ts, keep


@settings(max_examples=300, deadline=None)
@given(batches, st.randoms(use_true_random=False))
def test_order_by_series_is_a_stable_sort_by_rank_and_says_whether_time_rises(batch, rng) -> None:
    n_slots, rows = batch
    slots, ts, keep = _columns(rows)
    index = np.flatnonzero(keep)
    ranks = list(range(n_slots))
    rng.shuffle(ranks)
    rank_of = np.array(ranks, np.intp)
    ordered, rising = order_by_series(slots, index, rank_of, ts, n_slots)
    expected = sorted(index.tolist(), key=lambda i: ranks[slots[i]])  # sorted() is stable
    assert ordered.tolist() == expected
    per_series: dict[int, list[int]] = {}
    for i in expected:
        per_series.setdefault(int(slots[i]), []).append(int(ts[i]))
    assert rising == all(all(a < b for a, b in itertools.pairwise(t)) for t in per_series.values())


@settings(max_examples=300, deadline=None)
@given(batches, st.data())
def test_first_unknown_days_lists_each_needed_pair_first_where_it_first_appears(batch, data) -> None:
    n_slots, rows = batch
    slots, ts, keep = _columns(rows)
    no_day = np.iinfo(np.int64).min
    known = np.array([data.draw(st.sampled_from([no_day, -1, 0, 1])) for _ in range(n_slots)], np.int64)
    found = first_unknown_days(slots, ts, known, keep).tolist()
    pairs = [(int(slots[i]), int(ts[i]) // DAY_MS) for i in found]
    first: dict[tuple[int, int], int] = {}
    for i in np.flatnonzero(keep).tolist():
        pair = (int(slots[i]), int(ts[i]) // DAY_MS)
        if pair[1] != known[pair[0]]:
            first.setdefault(pair, i)
    assert list(dict.fromkeys(pairs)) == list(first)  # every needed pair, in order of appearance
    assert [first[p] for p in dict.fromkeys(pairs)] == [found[pairs.index(p)] for p in dict.fromkeys(pairs)]
    assert found == sorted(found)


def test_first_unknown_days_is_empty_when_every_row_is_known() -> None:
    slots = np.array([0, 1, 0], np.int64)
    ts = np.array([5, 6, 7], np.int64)
    known = np.zeros(2, np.int64)
    assert first_unknown_days(slots, ts, known, np.ones(3, np.bool_)).tolist() == []
    assert first_unknown_days(slots, ts + DAY_MS, known, np.array([False, True, False])).tolist() == [1]


@settings(max_examples=100, deadline=None)
@given(batches)
def test_gather_columns_is_fancy_indexing(batch) -> None:
    n_slots, rows = batch
    slots, ts, keep = _columns(rows)
    order = np.flatnonzero(keep)[::-1].copy()
    values = np.linspace(-1, 1, len(rows))
    fp_of = np.arange(n_slots, dtype=np.uint64) * np.uint64(2**61) + np.uint64(7)
    name_of = (np.arange(n_slots) % 3).astype(np.int32)
    rank_of_name = np.array([2, 0, 1], np.int32)
    fp, out_ts, out_values, names = gather_columns(order, slots, ts, values, fp_of, name_of, rank_of_name)
    assert fp.tolist() == fp_of[slots[order]].tolist()
    assert out_ts.tolist() == ts[order].tolist()
    assert out_values.tolist() == values[order].tolist()
    assert names.tolist() == rank_of_name[name_of[slots[order]]].tolist()
