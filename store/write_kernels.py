"""Compiled passes (numba) over a batch's samples for ``store.writes.SampleWriter``.

Why: with label sets already resolved to slots, what a large batch costs in Python is numpy passes
over every sample: sorting the batch into the table's key order (a sort, or two radix passes, and
two more passes to check time order), finding the series rows a batch needs (a sort of
(slot, day) keys), and gathering each column through two levels of indexing. Each of those is one
linear loop here (a counting sort; a stamp per slot), which also leaves the GIL to the request
threads while it runs.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
DAY_MS = 86_400_000


@numba.njit(cache=True, nogil=True)
def order_by_series(
    slots: np.ndarray, index: IntArray, rank_of: IntArray, ts: IntArray, n_ranks: int
) -> tuple[IntArray, bool]:
    """``index`` reordered series by series (by ``rank_of[slots[i]]``, in ``[0, n_ranks)``), batch
    order kept within a series (a stable counting sort); and whether every series' timestamps then
    rise strictly (False: some point is out of order or repeated, the caller sorts by time)."""
    m = len(index)
    start = np.zeros(n_ranks + 1, np.int64)
    for j in range(m):
        start[np.uint64(rank_of[np.uint64(slots[np.uint64(index[j])])]) + np.uint64(1)] += 1
    for r in range(n_ranks):
        start[r + 1] += start[r]
    out = np.empty(m, np.int64)
    last = np.empty(n_ranks, np.int64)
    seen = np.zeros(n_ranks, np.bool_)
    rising = True
    for j in range(m):
        i = np.uint64(index[j])
        r = np.uint64(rank_of[np.uint64(slots[i])])
        out[np.uint64(start[r])] = i
        start[r] += 1
        t = ts[i]
        if seen[r] and t <= last[r]:
            rising = False
        seen[r] = True
        last[r] = t
    return out, rising


@numba.njit(cache=True, nogil=True)
def first_unknown_days(slots: np.ndarray, ts: IntArray, known_day: IntArray, keep: np.ndarray) -> IntArray:
    """Positions of kept samples whose (slot, UTC day of ``ts`` in ms) has no stored series row
    (``known_day[slot]`` is the day a slot's row is known for), the first of each run of one slot's
    samples on one day: so each needed pair at least once, in order of first appearance. A slot
    whose days alternate within the batch may be listed once per change; the caller keeps the first
    of each pair."""
    stamp = known_day.copy()
    out = np.empty(len(slots), np.int64)
    n = 0
    for i in range(len(slots)):
        if not keep[i]:
            continue
        s = np.uint64(slots[i])
        d = ts[i] // DAY_MS  # floor division, as numpy's: days before 1970 are negative
        if stamp[s] != d:
            stamp[s] = d
            if d != known_day[s]:
                out[n] = i
                n += 1
    return out[:n]


@numba.njit(cache=True, nogil=True)
def gather_columns(
    order: IntArray,
    slots: np.ndarray,
    ts: IntArray,
    values: np.ndarray,
    fp_of: np.ndarray,
    name_of: np.ndarray,
    rank_of_name: np.ndarray,
) -> tuple[np.ndarray, IntArray, np.ndarray, np.ndarray]:
    """The samples table's columns for positions ``order``: fingerprint, timestamp, value, and the
    metric name's rank among the batch's names (``rank_of_name[name_of[slot]]``)."""
    m = len(order)
    fp = np.empty(m, np.uint64)
    out_ts = np.empty(m, np.int64)
    out_values = np.empty(m, np.float64)
    names = np.empty(m, np.int32)
    for j in range(m):
        i = np.uint64(order[j])
        s = np.uint64(slots[i])
        fp[j] = fp_of[s]
        out_ts[j] = ts[i]
        out_values[j] = values[i]
        names[j] = rank_of_name[np.uint64(name_of[s])]
    return fp, out_ts, out_values, names


def warm() -> None:
    """Load (or compile) every pass now, not inside the first insert."""
    slots = np.zeros(1, np.int64)
    index = np.zeros(1, np.int64)
    ts = np.zeros(1, np.int64)
    order_by_series(slots, index, index, ts, 1)
    first_unknown_days(slots, ts, ts, np.ones(1, np.bool_))
    codes = np.zeros(1, np.int32)
    gather_columns(index, slots, ts, np.zeros(1), np.zeros(1, np.uint64), codes, codes)
