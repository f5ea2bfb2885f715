"""The newest points of every series, kept in memory by the one writer of a chDB store.

Why: the view users open all day is a dashboard over the last 15 minutes or hour, refreshed every
minute. Each of its panel queries read its series from chDB, and a read has a fixed cost of a few
milliseconds however few points it returns; a refresh of forty panels spent most of its time there
(``docs/promql.md``). Prometheus answers the same from its in-memory head block. Here the writer
appends every stored point to pages in memory as well, and a read whose whole range lies within
what memory holds is answered from there.

Only where this process is the store's one writer (chDB, whose folder one process owns): a
ClickHouse server may take writes from other servers, which this memory would not see.

What it guarantees: every point the store holds at or after ``covered_from_ms`` (and not dropped by
retention) is here, and nothing else is. It starts from the store's newest ``window_ms`` (read once
when the store opens), follows every write after that, and moves ``covered_from_ms`` forward as time
goes on (a window behind the newest point) or when it reaches ``max_points``. Points older than
``covered_from_ms`` written late still reach the store; reads over such times go to the store.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable

import numpy as np
from loguru import logger

from model.series import Series
from store.backend import Backend
from store.recent_kernels import NO_PAGE, NO_TIME, append_points, drop_before, gather
from store.retention import partition_last_day

DEFAULT_WINDOW_MS = 6 * 3_600_000 + 1_800_000  # a 6-hour dashboard and its lookback
DEFAULT_MAX_POINTS = 32_000_000  # 16 bytes each: about 512 MB at most
PAGE_POINTS = 128
_DAY_MS = 86_400_000
_NOTHING = np.iinfo(np.int64).max  # covered_from_ms before anything is known: covers no read


class RecentPoints:
    """``append(slots, ts, values)`` from the writer, ``select(series, start, end)`` for reads.

    Thread-safe: one lock around the compiled passes, which run without the GIL.
    """

    def __init__(
        self,
        window_ms: int = DEFAULT_WINDOW_MS,
        max_points: int = DEFAULT_MAX_POINTS,
        page_points: int = PAGE_POINTS,
    ) -> None:
        self.window_ms = int(window_ms)
        self._max_pages = max(16, int(max_points) // page_points)
        self._page_points = page_points
        self._lock = threading.Lock()
        self._slot_of_fp: dict[int, int] = {}
        self.covered_from_ms = _NOTHING
        self.newest_ms = NO_TIME
        self._floor_ms = NO_TIME  # retention dropped every point before this
        self._alloc_pages(0)
        self._alloc_series(0)

    # -- memory ----------------------------------------------------------------------------------

    def _alloc_pages(self, pages: int) -> None:
        self._page_ts = np.zeros((pages, self._page_points), np.int64)
        self._page_val = np.zeros((pages, self._page_points), np.float64)
        self._fill = np.zeros(pages, np.int64)
        self._next = np.full(pages, NO_PAGE, np.int64)
        self._free = np.arange(pages - 1, -1, -1, dtype=np.int64)  # a stack: page 0 on top
        self._top = np.array([pages], np.int64)

    def _alloc_series(self, n: int) -> None:
        self._first = np.full(n, NO_PAGE, np.int64)
        self._last = np.full(n, NO_PAGE, np.int64)
        self._newest = np.full(n, NO_TIME, np.int64)
        self._unsorted = np.zeros(n, np.bool_)

    def _grow_pages(self) -> bool:
        """Double the pages (within ``max_pages``); False when already at the bound."""
        old = len(self._fill)
        new = min(self._max_pages, max(1024, 2 * old))
        if new <= old:
            return False
        self._page_ts = np.concatenate([self._page_ts, np.zeros((new - old, self._page_points), np.int64)])
        grown_val = np.zeros((new - old, self._page_points), np.float64)
        self._page_val = np.concatenate([self._page_val, grown_val])
        self._fill = np.concatenate([self._fill, np.zeros(new - old, np.int64)])
        self._next = np.concatenate([self._next, np.full(new - old, NO_PAGE, np.int64)])
        top = int(self._top[0])
        added = np.arange(new - 1, old - 1, -1, dtype=np.int64)
        self._free = np.concatenate([self._free[:top], added, np.zeros(old - top, np.int64)])
        self._top[0] = top + len(added)
        return True

    def _grow_series(self, n: int) -> None:
        old = len(self._first)
        if n <= old:
            return
        size = max(n, 1024, 2 * old)
        self._first = np.concatenate([self._first, np.full(size - old, NO_PAGE, np.int64)])
        self._last = np.concatenate([self._last, np.full(size - old, NO_PAGE, np.int64)])
        self._newest = np.concatenate([self._newest, np.full(size - old, NO_TIME, np.int64)])
        self._unsorted = np.concatenate([self._unsorted, np.zeros(size - old, np.bool_)])

    def _drop_before(self, min_ts: int) -> None:
        drop_before(
            min_ts,
            self._page_ts,
            self._fill,
            self._next,
            self._first,
            self._last,
            self._newest,
            self._unsorted,
            self._free,
            self._top,
        )

    def _make_room(self) -> None:
        """At ``max_points``: cover less time (half the span, again if need be) until a page is free."""
        span = self.window_ms
        while self._top[0] == 0 and span > 1:
            span //= 2
            cut = self.newest_ms - span
            if cut > self.covered_from_ms:
                self.covered_from_ms = cut
                self._drop_before(cut)
        if self._top[0] == 0:  # every page holds points of the newest instant: start over
            self._clear(self.newest_ms + 1)
        logger.info("recent points at their bound: reads before {} ms go to the store", self.covered_from_ms)

    def _clear(self, covered_from_ms: int) -> None:
        """Every point forgotten; series keep their slots (the writer holds them)."""
        self._alloc_pages(len(self._fill))
        self._first[:] = NO_PAGE
        self._last[:] = NO_PAGE
        self._newest[:] = NO_TIME
        self._unsorted[:] = False
        self.covered_from_ms = covered_from_ms

    # -- writes ----------------------------------------------------------------------------------

    def slots_of(self, fingerprints: Iterable[int]) -> list[int]:
        """The slot of each series (a new one for a series not seen yet)."""
        with self._lock:
            out = []
            for fp in fingerprints:
                slot = self._slot_of_fp.get(fp)
                if slot is None:
                    slot = self._slot_of_fp[fp] = len(self._slot_of_fp)
                out.append(slot)
            self._grow_series(len(self._slot_of_fp))
            return out

    def append(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        """Points just stored: ``slots[i]`` (from ``slots_of``) is point ``i``'s series."""
        if not len(ts):
            return
        slots = np.asarray(slots, np.int64)
        ts = np.asarray(ts, np.int64)
        values = np.asarray(values, np.float64)
        with self._lock:
            if self.covered_from_ms == _NOTHING:
                return  # not loaded: nothing is answered from here
            self.newest_ms = max(self.newest_ms, int(ts.max()))
            if self.newest_ms - self.covered_from_ms > self.window_ms + self.window_ms // 4:
                self.covered_from_ms = self.newest_ms - self.window_ms
                self._drop_before(self.covered_from_ms)
            done = 0
            while done < len(ts):
                done = append_points(
                    slots,
                    ts,
                    values,
                    done,
                    max(self.covered_from_ms, self._floor_ms),
                    self._page_ts,
                    self._page_val,
                    self._fill,
                    self._next,
                    self._first,
                    self._last,
                    self._newest,
                    self._unsorted,
                    self._free,
                    self._top,
                )
                if done < len(ts) and not self._grow_pages():
                    self._make_room()

    def load(self, backend: Backend) -> None:
        """Read the store's newest ``window_ms`` of points; from then on reads may come here."""
        db = backend.database
        newest = _newest_stored(backend)
        if not newest["n"]:
            with self._lock:
                self.covered_from_ms = NO_TIME + 1  # an empty store: everything it will hold comes here
            return
        covered_from = int(newest["t"]) - self.window_ms
        table = backend.query(
            f"SELECT fingerprint, ts_ms, value FROM {db}.samples WHERE ts_ms >= {{t0:Int64}} "
            "ORDER BY fingerprint, ts_ms",
            {"t0": covered_from},
        )
        fps = table.column("fingerprint").to_numpy()
        ts = table.column("ts_ms").to_numpy()
        values = table.column("value").to_numpy()
        if len(fps):  # until ClickHouse merges parts, a replayed point can be there twice
            keep = np.r_[(fps[1:] != fps[:-1]) | (ts[1:] != ts[:-1]), True]
            fps, ts, values = fps[keep], ts[keep], values[keep]
        distinct, inverse = np.unique(fps, return_inverse=True)
        slots = np.asarray(self.slots_of(distinct.tolist()), np.int64)[inverse]
        with self._lock:
            self.covered_from_ms = covered_from
            self.newest_ms = int(newest["t"])
        self.append(slots, ts, values)
        logger.info("recent points: {} points of {} series loaded", len(ts), len(distinct))

    def forget_before(self, ms: int) -> None:
        """Retention dropped the store's points before ``ms``: drop them here too."""
        with self._lock:
            self._floor_ms = max(self._floor_ms, ms)
            self._drop_before(self._floor_ms)

    def reset(self) -> None:
        """The store's tables were re-created: hold only what is written from now on."""
        with self._lock:
            self._clear(self.newest_ms + 1 if self.covered_from_ms != _NOTHING else _NOTHING)

    # -- reads -----------------------------------------------------------------------------------

    def covers(self, start_ms: int) -> bool:
        """Whether every stored point at or after ``start_ms`` is here."""
        return start_ms >= self.covered_from_ms

    def select(
        self, series: dict[int, dict[str, str]], start_ms: int, end_ms: int, max_samples: int | None = None
    ) -> list[Series] | None:
        """The points in ``[start_ms, end_ms]`` of ``series`` (fingerprint → labels), as the store's
        ``select`` returns them: in the order of ``series``, each series sorted with one point per
        timestamp. None when ``start_ms`` is not covered (any more): read the store."""
        order = list(series)
        with self._lock:
            if not self.covers(start_ms):
                return None
            wanted = np.array([self._slot_of_fp.get(fp, -1) for fp in order], np.int64)
            ts, values, bounds = gather(
                wanted,
                max(start_ms, self._floor_ms),
                end_ms,
                self._page_ts,
                self._page_val,
                self._fill,
                self._next,
                self._first,
                self._unsorted,
            )
            unsorted = self._unsorted[np.maximum(wanted, 0)] & (wanted >= 0)
        out: list[Series] = []
        budget = max_samples
        edges = bounds.tolist()  # Python ints: a loop over numpy scalars costs twice as much
        repair = unsorted.tolist()
        for k, fp in enumerate(order):
            lo, hi = edges[k], edges[k + 1]
            if lo == hi:
                continue
            t, v = ts[lo:hi], values[lo:hi]
            if repair[k]:
                t, v = _sorted_last_per_timestamp(t, v)
            if budget is not None:
                t, v = t[:budget], v[:budget]
                budget -= len(t)
            out.append(Series(dict(series[fp]), t, v))
            if budget is not None and budget <= 0:
                break
        return out


def _newest_stored(backend: Backend) -> dict[str, int]:
    """The newest point's time (``t``) and whether any is stored (``n``), read from the newest
    daily partition only: a max over the whole table would read every timestamp stored, at every
    start. A partition key of another form is read whole."""
    parts = backend.query(
        "SELECT DISTINCT partition FROM system.parts WHERE database = {db:String} "
        "AND table = 'samples' AND active",
        {"db": backend.database},
    )
    known = [partition_last_day(p) for p in parts.column(0).to_pylist()] if parts.num_rows else []
    where, params = "", {}
    if known and all(k is not None and k[1].startswith("'") for k in known):  # one day each
        day = max(k[0] for k in known if k is not None)
        where, params = " WHERE ts_ms >= {t0:Int64}", {"t0": (day - dt.date(1970, 1, 1)).days * _DAY_MS}
    sql = f"SELECT max(ts_ms) AS t, count() AS n FROM {backend.database}.samples{where}"
    return backend.query(sql, params).to_pylist()[0]  # type: ignore[no-any-return]


def _sorted_last_per_timestamp(ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points in time order, one per timestamp: the one written last (as the store keeps it)."""
    order = np.lexsort((np.arange(len(ts)), ts))
    ts, values = ts[order], values[order]
    last = np.r_[ts[1:] != ts[:-1], True]
    return ts[last], values[last]
