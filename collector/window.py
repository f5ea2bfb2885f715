"""10 s windows of per-request values: one sketch per (metric, labels, window), drained when closed.

The ingress proxy calls :meth:`WindowedSketches.observe` for every request (a TTFT, or a request's
inter-token gaps as one array) and :meth:`WindowedSketches.drain` on its flush tick; the rows go to
the store's sketch writer, where ClickHouse merges windows, pods and periods with ``sumMap``.

Values are buffered per window; the windows that close together are sketched in one vectorised
pass when drained (a window whose buffer fills first is sketched then), so a single-value
``observe`` costs a dict lookup and a list append, not a numpy call. A value
that arrives after its window was drained starts a new row for that window; rows of the same
window add up in the store, so late data is counted, never dropped. Not thread-safe: call it from
one event loop.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.labels import METRIC_NAME, Labels, to_labels
from sketch.batch import sketch_groups
from sketch.codec import SketchColumns, from_columns, from_dict, to_columns, to_dict
from sketch.mapping import DEFAULT_SCALE
from sketch.sketch import ExponentialHistogram


@dataclass(frozen=True, slots=True)
class SketchRow:
    """One closed window of one series: its identity, ``[window_start_ms, +width_s)``, its sketch."""

    metric: str
    labels: Labels  # canonical, without __name__
    window_start_ms: int
    width_s: int
    columns: SketchColumns
    # The row's identity in the store (0: none yet; whoever first keeps the row assigns one, see
    # ``new_row_id``). Rows of one window add up, so a resent row must carry the id it was first
    # sent with: reads keep one row per id (store/sketches.py).
    row_id: int = 0


MAX_ROW_ID = 2**64 - 1


def new_row_id() -> int:
    """A random non-zero 64-bit row id: two rows of one series and window collide with odds 2**-64."""
    return secrets.randbits(64) or 1


def with_row_ids(rows: list[SketchRow]) -> list[SketchRow]:
    """``rows``, each without an id given a new one (rows with one keep it)."""
    return [row if row.row_id else dataclasses.replace(row, row_id=new_row_id()) for row in rows]


@dataclass(slots=True)
class _OpenWindow:
    scalars: list[float] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    buffered: int = 0
    sketch: ExponentialHistogram | None = None  # only once the buffer overflowed

    def values(self) -> np.ndarray:
        """The buffered values as one array; the buffer is emptied."""
        if self.scalars:
            self.arrays.append(np.asarray(self.scalars, dtype=np.float64))
        values = self.arrays[0] if len(self.arrays) == 1 else np.concatenate(self.arrays or [np.empty(0)])
        self.scalars, self.arrays, self.buffered = [], [], 0
        return values


class WindowedSketches:
    """Sketches per series and window. ::

        windows = WindowedSketches(width_s=10)
        windows.observe("infer_service_first_token_cost", {"service_id": "s", "source": "pod-0"}, 41.7, now_s)
        rows = windows.drain(now_s)  # closed windows only

    ``grace_s`` keeps a window open that long after its end for values that arrive late.
    """

    def __init__(
        self, width_s: int = 10, scale: int = DEFAULT_SCALE, grace_s: float = 0.0, buffer_values: int = 4096
    ) -> None:
        if width_s <= 0 or int(width_s) != width_s:
            raise ValueError(f"window width must be a positive whole number of seconds, got {width_s}")
        if grace_s < 0:
            raise ValueError(f"grace must be ≥ 0 s, got {grace_s}")
        self.width_s = int(width_s)
        self.scale = scale
        self.grace_s = grace_s
        self.skipped = 0  # NaN / ±inf values seen (counted, not stored)
        self._buffer_values = buffer_values
        self._open: dict[tuple[str, Labels, int], _OpenWindow] = {}
        self._labels_cache: dict[tuple[tuple[str, str], ...], Labels] = {}

    def __len__(self) -> int:
        """Open (not yet drained) windows."""
        return len(self._open)

    def observe(self, metric: str, labels: dict[str, str], values: np.ndarray | float, ts_s: float) -> None:
        """Record values (ms, tokens, …) of ``metric`` for the series ``labels`` at time ``ts_s`` (s)."""
        window = math.floor(ts_s / self.width_s)
        key = (metric, self._canonical(labels), window)
        entry = self._open.get(key)
        if entry is None:
            entry = self._open[key] = _OpenWindow()
        if isinstance(values, np.ndarray):
            entry.arrays.append(np.array(values, dtype=np.float64).ravel())  # a copy: callers reuse buffers
            entry.buffered += values.size
        else:
            entry.scalars.append(float(values))
            entry.buffered += 1
        if entry.buffered >= self._buffer_values:
            if entry.sketch is None:
                entry.sketch = ExponentialHistogram(self.scale)
            self.skipped += entry.buffered - entry.sketch.add_many(entry.values())

    def drain(self, now_s: float) -> list[SketchRow]:
        """Rows of every window that ended at least ``grace_s`` before ``now_s``; they are forgotten."""
        limit = math.floor((now_s - self.grace_s) / self.width_s) if math.isfinite(now_s) else math.inf
        closed = sorted((key for key in self._open if key[2] + 1 <= limit), key=lambda k: (k[2], k[0], k[1]))
        entries = [self._open.pop(key) for key in closed]
        # Every closed window in one vectorised pass (see sketch.batch).
        buffers = [entry.values() for entry in entries]
        lengths = [b.size for b in buffers]
        all_values = np.concatenate(buffers) if buffers else np.empty(0)
        columns = sketch_groups(all_values, lengths, self.scale)
        rows = []
        for (metric, labels, window), entry, batch, size in zip(
            closed, entries, columns, lengths, strict=True
        ):
            self.skipped += size - (batch.count if batch else 0)
            result = batch
            if entry.sketch is not None:  # earlier overflow flushes: merge them in
                if batch is not None:
                    entry.sketch.merge(from_columns(batch))
                result = to_columns(entry.sketch) if entry.sketch.count else None
            if result is not None:
                rows.append(SketchRow(metric, labels, window * self.width_s * 1000, self.width_s, result))
        return rows

    def drain_all(self) -> list[SketchRow]:
        """Every window, open or not (at shutdown)."""
        return self.drain(math.inf)

    def _canonical(self, labels: dict[str, str]) -> Labels:
        # The proxy passes the same few label dicts again and again; sorting them once is enough.
        raw = tuple(labels.items())
        canonical = self._labels_cache.get(raw)
        if canonical is None:
            canonical = tuple((k, v) for k, v in to_labels(labels) if k != METRIC_NAME)
            if len(self._labels_cache) < 65_536:
                self._labels_cache[raw] = canonical
        return canonical


def rows_to_wire(rows: list[SketchRow]) -> list[dict[str, Any]]:
    """JSON-ready rows, for a sidecar in another process shipping them to ``infersight server``."""
    return [
        {
            "metric": row.metric,
            "labels": dict(row.labels),
            "window_start_ms": row.window_start_ms,
            "width_s": row.width_s,
            "sketch": to_dict(row.columns),
            **({"id": row.row_id} if row.row_id else {}),
        }
        for row in rows
    ]


MAX_WIDTH_S = 86_400


def rows_from_wire(data: list[dict[str, Any]]) -> list[SketchRow]:
    """Inverse of :func:`rows_to_wire`; ``ValueError`` names what is malformed (a window's start
    must fit a signed 64-bit integer, its width be 1 s to a day)."""
    try:
        rows = [
            SketchRow(
                str(item["metric"]),
                tuple((k, v) for k, v in to_labels(_string_map(item["labels"])) if k != METRIC_NAME),
                _integer(item["window_start_ms"], "window_start_ms", -(2**63), 2**63 - 1),
                _integer(item["width_s"], "width_s", 1, MAX_WIDTH_S),
                from_dict(item["sketch"]),
                _row_id(item.get("id", 0)),
            )
            for item in data
        ]
    except (KeyError, TypeError, AttributeError, OverflowError) as err:
        raise ValueError(f"malformed sketch row: {err!r}") from None
    return rows


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(x, str) for pair in value.items() for x in pair):
        raise ValueError(f"malformed sketch row labels: an object of strings, got {str(value)[:80]!r}")
    return value


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"malformed sketch row {name}: an integer in [{low}, {high}], got {value!r}")
    return value


def _row_id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ROW_ID:
        raise ValueError(f"sketch row id: an integer in [0, 2**64), got {value!r}")
    return value
