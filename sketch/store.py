"""Sparse bucket counts: sorted unique int64 indexes beside uint64 counts, with no size cap.

Why sparse and uncapped: the OTel SDK keeps at most 160 buckets per sign and, when a stream spans
more, halves the resolution (lowers the scale) for good; a log-normal TTFT stream ends at scale 3,
±4.3 %. Here the scale never changes, so the ≤ 1 % bound holds after any merge; the price is
memory that grows with the spread of the data, not with the number of values: 64 buckets per
doubling at scale 6, i.e. ~12 bytes * 64 * log2(max/min) — 1 µs … 1 h (in ms) is 31.7 doublings, at most
2,030 buckets (24 KB), and a 10 s window of 100 requests holds at most 100 buckets (1.2 KB).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_EMPTY_KEYS = np.empty(0, dtype=np.int64)
_EMPTY_COUNTS = np.empty(0, dtype=np.uint64)
_EXACT_IN_FLOAT64 = 2**53


def combine(keys: list[np.ndarray], counts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sum counts per key over several (keys, counts) pairs; sorted unique keys out, exact in uint64."""
    parts = [(k, c) for k, c in zip(keys, counts, strict=True) if k.size]
    if not parts:
        return _EMPTY_KEYS, _EMPTY_COUNTS
    if len(parts) == 1 and np.all(parts[0][0][1:] > parts[0][0][:-1]):
        return parts[0][0].astype(np.int64), parts[0][1].astype(np.uint64)
    all_keys = np.concatenate([k for k, _ in parts]).astype(np.int64, copy=False)
    all_counts = np.concatenate([c for _, c in parts]).astype(np.uint64, copy=False)
    low = int(all_keys.min())
    span = int(all_keys.max()) - low + 1
    if span <= 4 * all_keys.size + 65_536 and int(all_counts.sum()) < _EXACT_IN_FLOAT64:
        # Linear: a weighted bincount over the key span; float64 holds every total below 2**53 exactly.
        dense = np.bincount(all_keys - low, weights=all_counts.astype(np.float64), minlength=span)
        present = np.flatnonzero(dense)
        return present + low, dense[present].astype(np.uint64)
    order = np.argsort(all_keys, kind="stable")
    all_keys, all_counts = all_keys[order], all_counts[order]
    starts = np.flatnonzero(np.concatenate(([True], all_keys[1:] != all_keys[:-1])))
    return all_keys[starts], np.add.reduceat(all_counts, starts)


def count_indexes(indexes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of raw bucket indexes: sorted unique keys and their counts.

    ``bincount`` over the span (linear, ~1 ns a value) when the span is small next to the number
    of values, as latency data is; a sort otherwise (a few far-apart outliers).
    """
    if indexes.size == 0:
        return _EMPTY_KEYS, _EMPTY_COUNTS
    low = int(indexes.min())
    span = int(indexes.max()) - low + 1
    if span <= 4 * indexes.size + 4096:
        dense = np.bincount(indexes - low, minlength=span)
        present = np.flatnonzero(dense)
        return present + low, dense[present].astype(np.uint64)
    keys, counts = np.unique(indexes, return_counts=True)
    return keys.astype(np.int64), counts.astype(np.uint64)


class SparseStore:
    """Counts per bucket index. ``s = SparseStore(); s.add_indexes(np.array([3, 3, 5]))``."""

    __slots__ = ("counts", "keys")

    def __init__(self, keys: np.ndarray | None = None, counts: np.ndarray | None = None) -> None:
        self.keys = _EMPTY_KEYS if keys is None else np.asarray(keys, dtype=np.int64)
        self.counts = _EMPTY_COUNTS if counts is None else np.asarray(counts, dtype=np.uint64)
        if self.keys.shape != self.counts.shape:
            raise ValueError("keys and counts must have the same length")

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def size_bytes(self) -> int:
        """Memory held by the counters (keys and counts), bytes."""
        return self.keys.nbytes + self.counts.nbytes

    def __len__(self) -> int:
        return int(self.keys.size)

    def add_indexes(self, indexes: np.ndarray) -> None:
        """Count one value in each given bucket."""
        self.add_counts(*count_indexes(indexes))

    def add_counts(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Add counts for sorted unique ``keys`` (another store's, or a codec's)."""
        if keys.size == 0:
            return
        if self.keys.size:
            at = np.searchsorted(self.keys, keys)
            if at[-1] < self.keys.size and np.array_equal(self.keys[at], keys):
                # Common case in a running window: every bucket already exists, add in place.
                self.counts = self.counts.copy() if not self.counts.flags.writeable else self.counts
                self.counts[at] += counts.astype(np.uint64, copy=False)
                return
        self.keys, self.counts = combine([self.keys, keys], [self.counts, counts])

    def merge(self, other: SparseStore) -> None:
        self.add_counts(other.keys, other.counts)

    def copy(self) -> SparseStore:
        return SparseStore(self.keys.copy(), self.counts.copy())

    def downscaled(self, by: int) -> SparseStore:
        """The same counts at a scale ``by`` lower: ``2**by`` neighbouring buckets become one."""
        if by < 0:
            raise ValueError("a store can only lose resolution")
        return SparseStore(*combine([self.keys >> by], [self.counts]))

    @classmethod
    def merged(cls, stores: Iterable[SparseStore]) -> SparseStore:
        """One store holding the sum of all: a single sort, not pairwise merges."""
        items = list(stores)
        return cls(*combine([s.keys for s in items], [s.counts for s in items]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseStore):
            return NotImplemented
        return np.array_equal(self.keys, other.keys) and np.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SparseStore({len(self)} buckets, {self.total} values)"
