"""Compiled passes (numba) over the pages of ``store.recent_points.RecentPoints``.

Why compiled: appending a batch touches each sample once and reading a panel's series walks a
few page chains; as Python loops either would cost more than the chDB read they replace. The
kernels take the GIL off (``nogil``), so request threads run while a batch is appended.

Layout: points live in fixed-size pages (``ts[p, i]``, ``val[p, i]``, ``fill[p]`` points used);
each series is a chain of pages, oldest first (``first[s]``, ``last[s]``, ``next[p]``); free pages
form a stack (``free[:top]``). A series' points are in time order unless ``unsorted[s]``: a point
older than the series' newest went to its end and the reader sorts that series.
"""

from __future__ import annotations

import numba
import numpy as np

NO_PAGE = -1
NO_TIME = np.iinfo(np.int64).min  # newest[s] of a series without points


@numba.njit(cache=True, nogil=True)
def append_points(
    series: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    start: int,
    min_ts: int,
    page_ts: np.ndarray,
    page_val: np.ndarray,
    fill: np.ndarray,
    nxt: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    newest: np.ndarray,
    unsorted: np.ndarray,
    free: np.ndarray,
    top: np.ndarray,
) -> int:
    """Append points ``start..`` of the batch (``series[i]`` is a point's series slot); points older
    than ``min_ts`` are skipped. A point at its series' newest timestamp replaces that value (the
    store keeps one point per timestamp, the last written). Returns where it stopped: ``len(ts)``
    when done, earlier when it needs a page and none is free (the caller adds pages and calls again).
    """
    width = page_ts.shape[1]
    for i in range(start, len(ts)):
        t = ts[i]
        if t < min_ts:
            continue
        s = series[i]
        p = last[s]
        if p != NO_PAGE and t == newest[s] and not unsorted[s]:
            page_val[p, fill[p] - 1] = values[i]
            continue
        if p == NO_PAGE or fill[p] == width:
            if top[0] == 0:
                return i
            top[0] -= 1
            q = free[top[0]]
            fill[q] = 0
            nxt[q] = NO_PAGE
            if p == NO_PAGE:
                first[s] = q
            else:
                nxt[p] = q
            last[s] = q
            p = q
        if newest[s] != NO_TIME and t <= newest[s]:
            unsorted[s] = True
        else:
            newest[s] = t
        page_ts[p, fill[p]] = t
        page_val[p, fill[p]] = values[i]
        fill[p] += 1
    return len(ts)


@numba.njit(cache=True, nogil=True)
def drop_before(
    min_ts: int,
    page_ts: np.ndarray,
    fill: np.ndarray,
    nxt: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    newest: np.ndarray,
    unsorted: np.ndarray,
    free: np.ndarray,
    top: np.ndarray,
) -> None:
    """Give back every page whose points are all older than ``min_ts`` (a series left without
    pages starts afresh)."""
    for s in range(len(first)):
        p = first[s]
        while p != NO_PAGE:
            newest_in_page = page_ts[p, 0]
            for i in range(1, fill[p]):
                newest_in_page = max(newest_in_page, page_ts[p, i])
            if fill[p] and newest_in_page >= min_ts:
                break
            q = nxt[p]
            free[top[0]] = p
            top[0] += 1
            p = q
        first[s] = p
        if p == NO_PAGE:
            last[s] = NO_PAGE
            newest[s] = NO_TIME
            unsorted[s] = False


@numba.njit(cache=True, nogil=True)
def gather(
    wanted: np.ndarray,
    lo: int,
    hi: int,
    page_ts: np.ndarray,
    page_val: np.ndarray,
    fill: np.ndarray,
    nxt: np.ndarray,
    first: np.ndarray,
    unsorted: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points in ``[lo, hi]`` of the series ``wanted`` (slots; -1 for none), laid end to end in
    chain order; ``bounds[k]:bounds[k+1]`` are series ``k``'s. A series in time order skips the
    pages wholly before ``lo`` and stops at the first wholly after ``hi``: a 1-hour panel reads a
    sixth of a 6-hour window's pages."""
    bounds = np.zeros(len(wanted) + 1, np.int64)
    starts = np.full(len(wanted), NO_PAGE, np.int64)  # the first page worth reading, per series
    for k in range(len(wanted)):
        n = 0
        s = wanted[k]
        if s >= 0:
            ordered = not unsorted[s]
            p = first[s]
            if ordered:
                while p != NO_PAGE and fill[p] > 0 and page_ts[p, fill[p] - 1] < lo:
                    p = nxt[p]
            starts[k] = p
            while p != NO_PAGE:
                if ordered and fill[p] > 0 and page_ts[p, 0] > hi:
                    break
                for i in range(fill[p]):
                    t = page_ts[p, i]
                    if lo <= t <= hi:
                        n += 1
                p = nxt[p]
        bounds[k + 1] = bounds[k] + n
    out_ts = np.empty(bounds[-1], np.int64)
    out_val = np.empty(bounds[-1], np.float64)
    j = 0
    for k in range(len(wanted)):
        s = wanted[k]
        if s < 0:
            continue
        ordered = not unsorted[s]
        p = starts[k]
        while p != NO_PAGE:
            if ordered and fill[p] > 0 and page_ts[p, 0] > hi:
                break
            for i in range(fill[p]):
                t = page_ts[p, i]
                if lo <= t <= hi:
                    out_ts[j] = t
                    out_val[j] = page_val[p, i]
                    j += 1
            p = nxt[p]
    return out_ts, out_val, bounds
