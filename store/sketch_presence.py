"""Which metrics have sketch windows, and over what times, kept in memory by a chDB store's writer.

Why: the service dashboard's sketch percentile panels ask for ``infersight_sketch_quantile`` of
each service on every refresh, and most services send no sketches (only those behind the proxy,
or with an OpenTelemetry exporter, do). A merge over the sketch tables costs several milliseconds
even when it finds nothing, as much as the rest of a panel's work. Here a read for a metric that has
no window in its range answers empty without a statement.

What it holds: per metric name, an interval of window starts that contains every window the
``sketches`` and ``sketch_rollups`` tables hold (a superset: it only ever says "nothing here" when
that is certain). Loaded from the tables on first use, widened by every ``sketches`` insert the
backend completes, and read again after any other statement (a dropped partition, DDL, an insert
into ``sketches`` by SQL), keeping inserts that land while it reads. Inserts by SQL into other
tables leave it as it is: the rollup job's ``sketch_rollups`` buckets are made of windows it already
knows, and start at most one rollup width before them, which ``may_hold`` allows for.

Only for chDB, whose folder one process owns: a ClickHouse server may take sketches from other
processes, so readers there always ask the store.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

import pyarrow as pa

from model.rollups import WIDTHS_MS

if TYPE_CHECKING:
    from store.backend import Backend

Spans = dict[str, tuple[int, int]]

# A statement that inserts into a table other than ``sketches``: it adds no window unknown here.
_KEEPS = re.compile(r"\s*INSERT\s+INTO\s+(?:\w+\.)?(?!sketches\b)\w+(?=[\s(])", re.IGNORECASE)
# A rollup bucket starts at most this long before the first window in it.
_WIDEST_MS = max(WIDTHS_MS)

_LOAD_SQL = (
    "SELECT metric_name, min(window_start_ms) AS lo, max(window_start_ms) AS hi FROM ("
    "SELECT metric_name, window_start_ms FROM {db}.sketches UNION ALL "
    "SELECT metric_name, window_start_ms FROM {db}.sketch_rollups) GROUP BY metric_name"
)


def _widen(spans: Spans, metric: str, lo: int, hi: int) -> None:
    old = spans.get(metric)
    spans[metric] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))


def spans_of(rows: pa.Table) -> Spans:
    """Per metric, the earliest and latest window start among ``rows`` (a ``sketches`` insert)."""
    if not rows.num_rows or "metric_name" not in rows.column_names:
        return {}
    grouped = rows.group_by("metric_name").aggregate([("window_start_ms", "min"), ("window_start_ms", "max")])
    return dict(
        zip(
            grouped.column("metric_name").to_pylist(),
            zip(
                grouped.column("window_start_ms_min").to_pylist(),
                grouped.column("window_start_ms_max").to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )


class SketchPresence:
    """``may_hold(backend, metric, lo, hi)``: False only when no window or rollup bucket of ``metric``
    starts in ``[lo, hi]``; ``add(rows)`` after each completed ``sketches`` insert;
    ``after_statement(sql)`` after any other statement."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: Spans | None = None  # None: to be read from the tables
        self._pending: Spans | None = None  # inserts completed while a read is under way
        self._generation = 0

    def add(self, rows: pa.Table) -> None:
        if self._known is None and self._pending is None:
            return  # the next read of the tables sees these rows
        spans = spans_of(rows)
        with self._lock:
            for target in (self._known, self._pending):
                if target is not None:
                    for metric, (lo, hi) in spans.items():
                        _widen(target, metric, lo, hi)

    def after_statement(self, sql: str) -> None:
        """After a statement through the backend's ``execute``: stale unless it cannot matter."""
        if not _KEEPS.match(sql):
            self.mark_stale()

    def mark_stale(self) -> None:
        with self._lock:
            self._known = None
            self._generation += 1

    def _spans(self, backend: Backend) -> Spans | None:
        """The spans, read from the tables when stale; None when a statement ran during the read."""
        with self._lock:
            if self._known is not None:
                return self._known
            if self._pending is None:
                self._pending = {}
            generation = self._generation
        table = backend.query(_LOAD_SQL.format(db=backend.database))
        loaded: Spans = {}
        if table.num_rows:
            for metric, lo, hi in zip(
                table.column("metric_name").to_pylist(),
                table.column("lo").to_pylist(),
                table.column("hi").to_pylist(),
                strict=True,
            ):
                loaded[metric] = (int(lo), int(hi))
        with self._lock:
            for metric, (lo, hi) in (self._pending or {}).items():
                _widen(loaded, metric, lo, hi)
            if self._generation != generation:  # a statement ran meanwhile: this read may be behind
                return None
            self._known = loaded
            self._pending = None
            return loaded

    def may_hold(self, backend: Backend, metric: str, lo_ms: int, hi_ms: int) -> bool:
        spans = self._spans(backend)
        if spans is None:
            return True
        span = spans.get(metric)
        return span is not None and span[0] - _WIDEST_MS <= hi_ms and lo_ms <= span[1]
