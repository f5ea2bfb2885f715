"""Sparse store: counts per index, exact merges, downscaling, no size cap."""

from __future__ import annotations

import numpy as np
import pytest

from sketch.store import SparseStore, combine, count_indexes


def test_count_indexes_dense_and_sparse_paths_agree() -> None:
    near = np.array([5, 3, 5, 5, 9, 3])
    far = np.array([5, 3, 5, 5, 9, 3, 10_000_000, -10_000_000])
    keys, counts = count_indexes(near)
    assert keys.tolist() == [3, 5, 9]
    assert counts.tolist() == [2, 3, 1]
    keys, counts = count_indexes(far)
    assert keys.tolist() == [-10_000_000, 3, 5, 9, 10_000_000]
    assert counts.tolist() == [1, 2, 3, 1, 1]


def test_add_into_existing_and_new_buckets() -> None:
    store = SparseStore()
    store.add_indexes(np.array([1, 2, 2]))
    store.add_indexes(np.array([2, 1]))  # in place
    store.add_indexes(np.array([0, 7]))  # new keys
    assert store.keys.tolist() == [0, 1, 2, 7]
    assert store.counts.tolist() == [1, 2, 3, 1]
    assert store.total == 7
    assert len(store) == 4


def test_no_cap_on_buckets() -> None:
    store = SparseStore()
    store.add_indexes(np.arange(0, 100_000, 7))
    assert len(store) == len(range(0, 100_000, 7))


def test_merged_equals_pairwise_merges() -> None:
    rng = np.random.default_rng(1)
    stores = []
    for _ in range(20):
        s = SparseStore()
        s.add_indexes(rng.integers(-50, 50, 30))
        stores.append(s)
    pairwise = SparseStore()
    for s in stores:
        pairwise.merge(s)
    assert SparseStore.merged(stores) == pairwise


def test_counts_stay_exact_beyond_float_precision() -> None:
    big = np.array([2**60], dtype=np.uint64)
    _, counts = combine([np.array([1]), np.array([1])], [big, np.array([1], dtype=np.uint64)])
    assert counts.tolist() == [2**60 + 1]


def test_downscale_folds_neighbours() -> None:
    store = SparseStore(np.array([-3, -2, 0, 1, 2, 3]), np.array([1, 1, 1, 1, 1, 1]))
    low = store.downscaled(1)  # index >> 1: floor division, as the OTel spec's downscale
    assert low.keys.tolist() == [-2, -1, 0, 1]
    assert low.counts.tolist() == [1, 1, 2, 2]
    with pytest.raises(ValueError, match="lose resolution"):
        store.downscaled(-1)


def test_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="same length"):
        SparseStore(np.array([1, 2]), np.array([1]))
