"""Range-query answers kept per query and step grid, so a dashboard's next refresh computes only the
steps that are new (VictoriaMetrics' rollup result cache, a query frontend's extent cache).

Why: Grafana asks the same queries every refresh, over a window that slid by a minute; all but its
newest steps were answered a minute ago. An entry holds the answer's steps up to ``recent_ms``
(5 minutes) before the time it was computed: later points can still arrive for newer times. It is
used only while the store's ``data_stamp`` is the one read before it was computed: a point written
for an older time (late data, a restarted sender's backlog), a new series, dropped partitions
(retention) or any other statement changes the stamp, and the answer is computed afresh. A store
without a stamp (a ClickHouse server that other processes write to) gets no caching.

Answers are keyed by the caller's project scope, the query text, the step and the grid's offset
(``start % step``): a project never gets another's answer. Queries with ``offset`` or ``@`` are
not cached (a step's value could then depend on newer points than the step, or on the range).
A hit returns the cached steps from ``start`` and evaluates only the steps after them, as the
engine's own passes would; steps are independent, so the answer is the same as computed whole.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from query.promql.blocks import label_key
from query.promql.value import Matrix, MatrixSeries

MAX_ENTRIES = 512
# Points held by all entries together (16 bytes each: 64 MB); an answer larger than a tenth of it
# is not kept.
MAX_POINTS = 4_000_000
# Not cached: a step could depend on points newer than itself, or on the query's range.
_UNCACHEABLE = re.compile(r"\boffset\b|@", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: Hashable
    first_ms: int
    last_ms: int  # the last cached step; steps after it are computed
    series: list[MatrixSeries]
    points: int


def _slice(series: list[MatrixSeries], lo_ms: int, hi_ms: int, copy: bool = False) -> list[MatrixSeries]:
    """The points in ``[lo_ms, hi_ms]``; ``copy``: in arrays of their own, not views that would keep
    the whole answer's arrays alive."""
    out = []
    for s in series:
        ts = s.ts_ms
        if len(ts) and lo_ms <= ts[0] and ts[-1] <= hi_ms:  # the usual case: all of it
            a, b = 0, len(ts)
        else:
            a, b = ts.searchsorted(lo_ms, "left"), ts.searchsorted(hi_ms, "right")
        if b > a:
            ts, values = ts[a:b], s.values[a:b]
            if copy:
                ts, values = ts.copy(), values.copy()
            out.append(MatrixSeries(dict(s.labels) if copy else s.labels, ts, values))
    return out


def _join(head: list[MatrixSeries], tail: list[MatrixSeries]) -> list[MatrixSeries]:
    parts: dict[object, list[MatrixSeries]] = {}
    for s in (*head, *tail):
        parts.setdefault(label_key(s.labels), []).append(s)
    out = [
        MatrixSeries(p[0].labels, np.concatenate([x.ts_ms for x in p]), np.concatenate([x.values for x in p]))
        if len(p) > 1
        else p[0]
        for p in parts.values()
    ]
    out.sort(key=lambda s: label_key(s.labels))
    return out


class RangeResultCache:
    """``range(scope, text, start, end, step, compute)``: ``compute(start, end)``'s answer, reusing
    the steps an earlier answer of the same query already has."""

    def __init__(
        self,
        stamp: Callable[[], Hashable | None],
        recent_ms: int,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._stamp = stamp
        self._recent_ms = recent_ms
        self._clock_ms = clock_ms
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._points = 0
        self.hits = 0
        self.misses = 0

    def range(
        self,
        scope: str | None,
        text: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        compute: Callable[[int, int], Matrix],
    ) -> Matrix:
        if _UNCACHEABLE.search(text):
            return compute(start_ms, end_ms)
        now_ms = self._clock_ms()  # before the stamp: see store.chdb's old_point_writes
        stamp = self._stamp()
        if stamp is None:
            return compute(start_ms, end_ms)
        key = (scope, text, step_ms, start_ms % step_ms)
        with self._lock:
            entry = self._entries.get(key)
            usable = (
                entry is not None and entry.stamp == stamp and entry.first_ms <= start_ms <= entry.last_ms
            )
            if usable:
                self._entries.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
        if usable:
            assert entry is not None
            series = _slice(entry.series, start_ms, min(end_ms, entry.last_ms))
            tail_from = entry.last_ms + step_ms
            if tail_from <= end_ms:
                series = _join(series, compute(tail_from, end_ms).series)
        else:
            series = compute(start_ms, end_ms).series
        settled = start_ms + (now_ms - self._recent_ms - start_ms) // step_ms * step_ms
        last_ms = min(settled, start_ms + (end_ms - start_ms) // step_ms * step_ms)
        if usable and entry is not None and entry.last_ms >= last_ms:
            return Matrix(series)  # the entry already holds every settled step asked for
        if last_ms >= start_ms and sum(len(s.ts_ms) for s in series) <= MAX_POINTS // 10:
            kept = _slice(series, start_ms, last_ms, copy=True)
            self._keep(key, _Entry(stamp, start_ms, last_ms, kept, sum(len(s.ts_ms) for s in kept)))
        return Matrix(series)

    def _keep(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            self._points += entry.points - (old.points if old is not None else 0)
            self._entries[key] = entry
            while len(self._entries) > self._max_entries or self._points > MAX_POINTS:
                self._points -= self._entries.popitem(last=False)[1].points
