"""Which metrics have sketch windows, and over what times, kept in memory by a chDB store's writer.

Why: the service dashboard's sketch percentile panels ask for ``infersight_sketch_quantile`` of
each service on every refresh, and most services send no sketches (only those behind the proxy,
or with an OpenTelemetry exporter, do). A merge over the sketch tables costs several milliseconds
even when it finds nothing, as much as the rest of a panel's work. Here a read for a metric that has
no window in its range answers empty without a statement.

What it holds: per metric name, an interval of window starts that contains every window the
``sketches`` and ``sketch_rollups`` tables hold (a superset: it only ever says "nothing here" when
that is certain). Read from the tables on first use, widened by every ``sketches`` insert the
backend completes, and read again after any other statement (a dropped partition, DDL, an insert
into ``sketches`` by SQL), as ``store.table_mirror`` keeps it. Inserts by SQL into other
tables leave it as it is: the rollup job's ``sketch_rollups`` buckets are made of windows it already
knows, and start at most one rollup width before them, which ``may_hold`` allows for.

Only for chDB, whose folder one process owns: a ClickHouse server may take sketches from other
processes, so readers there always ask the store.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pyarrow as pa

from model.rollups import WIDTHS_MS
from store.table_mirror import TableMirror

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
        self._mirror: TableMirror[Spans] = TableMirror("sketch presence", _read, _feed)

    def add(self, rows: pa.Table) -> None:
        self._mirror.add(rows)

    def after_statement(self, sql: str) -> None:
        """After a statement through the backend's ``execute``: stale unless it cannot matter."""
        if not _KEEPS.match(sql):
            self._mirror.mark_stale()

    def may_hold(self, backend: Backend, metric: str, lo_ms: int, hi_ms: int) -> bool:
        spans = self._mirror.current(backend)
        if spans is None:  # not known here now: the store answers
            return True
        span = spans.get(metric)
        return span is not None and span[0] - _WIDEST_MS <= hi_ms and lo_ms <= span[1]


def _read(backend: Backend) -> Spans:
    table = backend.query(_LOAD_SQL.format(db=backend.database))
    if not table.num_rows:
        return {}
    return {
        metric: (int(lo), int(hi))
        for metric, lo, hi in zip(
            table.column("metric_name").to_pylist(),
            table.column("lo").to_pylist(),
            table.column("hi").to_pylist(),
            strict=True,
        )
    }


def _feed(spans: Spans, rows: pa.Table) -> bool:
    for metric, (lo, hi) in spans_of(rows).items():
        old = spans.get(metric)
        spans[metric] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return True
