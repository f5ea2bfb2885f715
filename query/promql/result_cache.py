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
import numpy.typing as npt

from query.promql.blocks import label_key
from query.promql.value import Matrix, MatrixSeries, render_points

MAX_ENTRIES = 512
# Bytes held by all entries together (arrays, and the points' JSON text, about 20 bytes each); an
# answer larger than a tenth of it is not kept.
MAX_BYTES = 96 << 20
# Not cached: a step could depend on points newer than itself, or on the query's range.
_UNCACHEABLE = re.compile(r"\boffset\b|@", re.IGNORECASE)

# A series with its points' JSON text (``points_json``) and where each point starts in it
# (``value.render_points``).
_Part = tuple[MatrixSeries, npt.NDArray[np.int64]]


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: Hashable
    first_ms: int
    last_ms: int  # the last cached step; steps after it are computed
    parts: list[_Part]
    nbytes: int


def _with_text(series: list[MatrixSeries]) -> list[_Part]:
    """Computed series with their points rendered: an answer is formatted once, when computed,
    and each later refresh takes the text of the steps it reuses."""
    return [
        (MatrixSeries(s.labels, s.ts_ms, s.values, text), offsets)
        for s, (text, offsets) in zip(series, render_points(series), strict=True)
    ]


def _slice(parts: list[_Part], lo_ms: int, hi_ms: int, copy: bool = False) -> list[_Part]:
    """The points in ``[lo_ms, hi_ms]``, with their text; ``copy``: in arrays of their own, not
    views that would keep the whole answer's arrays alive."""
    out = []
    for s, offsets in parts:
        ts = s.ts_ms
        if len(ts) and lo_ms <= ts[0] and ts[-1] <= hi_ms and not copy:  # the usual case: all of it
            out.append((s, offsets))
            continue
        a, b = int(ts.searchsorted(lo_ms, "left")), int(ts.searchsorted(hi_ms, "right"))
        if b > a:
            ts, values = ts[a:b], s.values[a:b]
            if copy:
                ts, values = ts.copy(), values.copy()
            text = s.points_json[offsets[a] : offsets[b] - 1] if s.points_json is not None else None
            labels = dict(s.labels) if copy else s.labels
            out.append((MatrixSeries(labels, ts, values, text), offsets[a : b + 1] - offsets[a]))
    return out


def _join(head: list[_Part], tail: list[_Part]) -> list[_Part]:
    groups: dict[object, list[_Part]] = {}
    for part in (*head, *tail):
        groups.setdefault(label_key(part[0].labels), []).append(part)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        (first, first_offsets), (second, second_offsets) = group  # one from each side
        if not len(first.ts_ms) or not len(second.ts_ms):  # a side without points adds nothing
            out.append(group[0] if len(first.ts_ms) else group[1])
            continue
        # Every part here was rendered (``_with_text``, or sliced from a part that was).
        assert first.points_json is not None
        assert second.points_json is not None
        shift = len(first.points_json) + 1  # the comma between them
        out.append(
            (
                MatrixSeries(
                    first.labels,
                    np.concatenate([first.ts_ms, second.ts_ms]),
                    np.concatenate([first.values, second.values]),
                    first.points_json + b"," + second.points_json,
                ),
                np.concatenate([first_offsets[:-1], second_offsets + shift]),
            )
        )
    out.sort(key=lambda part: label_key(part[0].labels))
    return out


def _nbytes(parts: list[_Part]) -> int:
    return sum(
        s.ts_ms.nbytes + s.values.nbytes + offsets.nbytes + len(s.points_json or b"") for s, offsets in parts
    )


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
        self._bytes = 0
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
            parts = _slice(entry.parts, start_ms, min(end_ms, entry.last_ms))
            tail_from = entry.last_ms + step_ms
            if tail_from <= end_ms:
                parts = _join(parts, _with_text(compute(tail_from, end_ms).series))
        else:
            parts = _with_text(compute(start_ms, end_ms).series)
        answer = Matrix([s for s, _ in parts])
        settled = start_ms + (now_ms - self._recent_ms - start_ms) // step_ms * step_ms
        last_ms = min(settled, start_ms + (end_ms - start_ms) // step_ms * step_ms)
        if usable and entry is not None and entry.last_ms >= last_ms:
            return answer  # the entry already holds every settled step asked for
        if last_ms >= start_ms and _nbytes(parts) <= MAX_BYTES // 10:
            kept = _slice(parts, start_ms, last_ms, copy=True)
            self._keep(key, _Entry(stamp, start_ms, last_ms, kept, _nbytes(kept)))
        return answer

    def _keep(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes += entry.nbytes - (old.nbytes if old is not None else 0)
            self._entries[key] = entry
            while len(self._entries) > self._max_entries or self._bytes > MAX_BYTES:
                self._bytes -= self._entries.popitem(last=False)[1].nbytes
