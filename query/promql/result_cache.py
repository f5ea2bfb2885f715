"""Range-query answers kept per query and step grid, so a dashboard's next refresh computes only the
steps that are new (VictoriaMetrics' rollup result cache, a query frontend's extent cache).

Why: Grafana asks the same queries every refresh, over a window that slid by a minute; all but its
newest steps were answered a minute ago. A PromQL step at time ``t`` reads only points at or before
``t``, so a kept answer stays right for every step before the oldest point written since it was
computed: the store notes each write of points with its oldest time (``store.write_marks``), and a
refresh reuses the steps before it and computes the rest. The next scrape, newer than every step,
changes nothing kept; a late point an hour back (a restarted sender's backlog) has the steps from
then on computed afresh. Anything else that could change an answer (a new series, dropped
partitions by retention, any statement) changes the store's ``data_stamp``, and the answer is
computed whole. A store that cannot tell (a ClickHouse server that other processes write to) gets
no caching.

Answers are keyed by the caller's project scope, the query text, the step and the grid's offset
(``start % step``): a project never gets another's answer. Queries with ``offset`` or ``@`` are
not cached (a step's value could then depend on newer points than the step, or on the range). A
query may name series whose newest steps change as time passes (``keep_until_ms(text)``: the
sketch series, whose empty window is marked stale only once it has settled): its steps after the
time that says, read before the answer is computed, are not kept. A hit returns the kept steps
from ``start`` and evaluates only the steps after them, as the engine's own passes would; steps
are independent, so the answer is the same as computed whole.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from query.promql.blocks import label_key
from query.promql.value import Matrix, MatrixSeries, render_points
from store.write_marks import WriteMarks

# Answers kept at most: enough for many dashboards open at once (20 service dashboards are 880
# panels), the bytes below bounding memory first.
MAX_ENTRIES = 16_384
# Bytes held by all entries together (arrays, the points' JSON text, about 20 bytes each, and the
# query text of each key: a query may be 128 KiB); an answer larger than a tenth of it is not kept.
MAX_BYTES = 96 << 20
# What an entry holds beyond its points and its query's text (key, record, list).
_ENTRY_BYTES = 512
# What ``kept`` counts for a series beyond its points: writing its labels costs about that much text.
_SERIES_BYTES = 512
# Not cached: a step could depend on points newer than itself, or on the query's range.
_UNCACHEABLE = re.compile(r"\boffset\b|@", re.IGNORECASE)

# A series with its points' JSON text (``points_json``) and where each point starts in it
# (``value.render_points``).
_Part = tuple[MatrixSeries, npt.NDArray[np.int64]]


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: Hashable
    written: int  # the write marks' count read before its steps were computed
    first_ms: int
    last_ms: int  # the last kept step; steps after it are computed
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
    views that would keep the whole answer's arrays alive (a part already in arrays of its own,
    as joining makes them, is taken as it is)."""
    out = []
    for s, offsets in parts:
        ts = s.ts_ms
        if not len(ts):
            continue
        first, last = int(ts[0]), int(ts[-1])
        if lo_ms <= first and last <= hi_ms and (not copy or _own_arrays(s, offsets)):
            out.append((s, offsets))  # the usual case: all of it
            continue
        a = 0 if lo_ms <= first else int(ts.searchsorted(lo_ms, "left"))
        b = len(ts) if last <= hi_ms else int(ts.searchsorted(hi_ms, "right"))
        if b > a:
            ts, values = ts[a:b], s.values[a:b]
            if copy:
                ts, values = ts.copy(), values.copy()
            text = s.points_json[offsets[a] : offsets[b] - 1] if s.points_json is not None else None
            labels = dict(s.labels) if copy else s.labels
            out.append((MatrixSeries(labels, ts, values, text), offsets[a : b + 1] - offsets[a]))
    return out


def _own_arrays(series: MatrixSeries, offsets: npt.NDArray[np.int64]) -> bool:
    """Whether the arrays are no views of others (which keeping them would keep alive)."""
    return series.ts_ms.base is None and series.values.base is None and offsets.base is None


def _join(head: list[_Part], tail: list[_Part]) -> list[_Part]:
    """Each series' kept points followed by its computed ones; in labels' order."""
    if len(head) == len(tail) and all(
        h.labels == t.labels for (h, _), (t, _) in zip(head, tail, strict=True)
    ):
        # The usual case: the same series on both sides, in the same order (both are sorted).
        return [_joined(first, second) for first, second in zip(head, tail, strict=True)]
    groups: dict[object, list[_Part]] = {}
    for part in (*head, *tail):
        groups.setdefault(label_key(part[0].labels), []).append(part)
    out = [group[0] if len(group) == 1 else _joined(*group) for group in groups.values()]
    out.sort(key=lambda part: label_key(part[0].labels))
    return out


def _joined(first_part: _Part, second_part: _Part) -> _Part:
    """One series' two parts, the first's points before the second's: in arrays of their own, or
    the one part that has points as it is."""
    (first, first_offsets), (second, second_offsets) = first_part, second_part
    if not len(first.ts_ms) or not len(second.ts_ms):  # a side without points adds nothing
        return first_part if len(first.ts_ms) else second_part
    # Every part here was rendered (``_with_text``, or sliced from a part that was).
    assert first.points_json is not None
    assert second.points_json is not None
    shift = len(first.points_json) + 1  # the comma between them
    return (
        MatrixSeries(
            first.labels,
            np.concatenate([first.ts_ms, second.ts_ms]),
            np.concatenate([first.values, second.values]),
            first.points_json + b"," + second.points_json,
        ),
        np.concatenate([first_offsets[:-1], second_offsets + shift]),
    )


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
        marks: WriteMarks,
        keep_until_ms: Callable[[str], int | None] = lambda _: None,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._stamp = stamp
        self._marks = marks
        self._keep_until_ms = keep_until_ms
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
        written = self._marks.count  # before the stamp, the check and the computing: see WriteMarks
        keyed = self._keyed(scope, text, start_ms, step_ms)
        if keyed is None:
            return compute(start_ms, end_ms)
        key, stamp = keyed
        entry, valid_to, reuse_to, last_ms = self._look_up(key, stamp, text, start_ms, end_ms, step_ms)
        self._count(key, reuse_to >= start_ms)
        if reuse_to >= start_ms:
            assert entry is not None
            parts = _slice(entry.parts, start_ms, reuse_to)
            if reuse_to + step_ms <= end_ms:
                parts = _join(parts, _with_text(compute(reuse_to + step_ms, end_ms).series))
            if entry.last_ms == valid_to and last_ms <= valid_to:
                return Matrix([s for s, _ in parts])  # the entry holds every step to keep, all still right
        else:
            parts = _with_text(compute(start_ms, end_ms).series)
        if last_ms >= start_ms and _nbytes(parts) <= MAX_BYTES // 10:
            kept = _slice(parts, start_ms, last_ms, copy=True)
            held = _nbytes(kept) + len(text) + _ENTRY_BYTES  # its key's text counts too
            self._keep(key, _Entry(stamp, written, start_ms, last_ms, kept, held))
        return Matrix([s for s, _ in parts])

    def kept(
        self, scope: str | None, text: str, start_ms: int, end_ms: int, step_ms: int, max_bytes: int
    ) -> Matrix | None:
        """The answer if every step asked for is kept and still right, so nothing is computed, and
        the kept answer is at most ``max_bytes`` (each series counted ``_SERIES_BYTES`` more, for
        its labels); else None, and no miss counted (``range`` then answers)."""
        keyed = self._keyed(scope, text, start_ms, step_ms)
        if keyed is None:
            return None
        key, stamp = keyed
        entry, _, reuse_to, _ = self._look_up(key, stamp, text, start_ms, end_ms, step_ms)
        if (
            entry is None
            or entry.nbytes + _SERIES_BYTES * len(entry.parts) > max_bytes
            or reuse_to < start_ms
            or reuse_to + step_ms <= end_ms
        ):
            return None
        self._count(key, True)
        return Matrix([s for s, _ in _slice(entry.parts, start_ms, reuse_to)])

    def _keyed(
        self, scope: str | None, text: str, start_ms: int, step_ms: int
    ) -> tuple[Hashable, Hashable] | None:
        """The query's entry key and the store's stamp; None where its answer may not be kept."""
        if _UNCACHEABLE.search(text):
            return None
        stamp = self._stamp()
        return None if stamp is None else ((scope, text, step_ms, start_ms % step_ms), stamp)

    def _look_up(
        self, key: Hashable, stamp: Hashable, text: str, start_ms: int, end_ms: int, step_ms: int
    ) -> tuple[_Entry | None, int | None, int, int]:
        """The entry under ``key``, its last step still right, the last of its steps this query
        uses (before ``start_ms``: none), and the last step of this query to keep."""
        # The last step to keep: none after what the query's series say has settled (read before
        # computing, so every step kept had settled by then).
        until = self._keep_until_ms(text)
        last = end_ms if until is None else min(end_ms, until)
        last_ms = start_ms + (last - start_ms) // step_ms * step_ms
        with self._lock:
            entry = self._entries.get(key)
            valid_to = self._valid_to(entry, stamp, step_ms)
        reuse_to = start_ms - 1  # none
        if entry is not None and valid_to is not None and entry.first_ms <= start_ms:
            reuse_to = min(valid_to, last_ms)
        return entry, valid_to, reuse_to, last_ms

    def _count(self, key: Hashable, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
                if key in self._entries:
                    self._entries.move_to_end(key)
            else:
                self.misses += 1

    def _valid_to(self, entry: _Entry | None, stamp: Hashable, step_ms: int) -> int | None:
        """The last step of ``entry`` still right (those before the oldest point written since it
        was computed), or None."""
        if entry is None or entry.stamp != stamp:
            return None
        oldest = self._marks.oldest_since(entry.written)
        if oldest is None or oldest > entry.last_ms:
            return entry.last_ms
        return entry.first_ms + (oldest - 1 - entry.first_ms) // step_ms * step_ms

    def _keep(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes += entry.nbytes - (old.nbytes if old is not None else 0)
            self._entries[key] = entry
            while len(self._entries) > self._max_entries or self._bytes > MAX_BYTES:
                self._bytes -= self._entries.popitem(last=False)[1].nbytes
