"""Window sketches in and out of the ``sketches`` table; ClickHouse merges them with ``sumMap``.

Writes take the collector's closed-window rows (anything shaped like ``collector.window.SketchRow``:
the store does not import the collector). Reads merge every matching row into one set of bucket
counts per period and scale — across pods, deployments and 10 s windows — inside ClickHouse, so a
15-day span returns one small row per period, not every window.

Each row has a ``row_id`` (the one it was shipped with, else a new random one); a row inserted
twice is read once (``store.sketch_dedup``), so retries and replays never add a window twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from model.labels import METRIC_NAME, Labels, to_labels
from model.rollups import WIDTHS_MS, widest_tiling
from store.backend import Backend
from store.rollups import LateMarker, read_done
from store.sketch_dedup import DEDUP_KEY
from store.writes import fingerprint

# Identity labels with a column of their own: the ones reads filter and group on (DESIGN, metric model).
IDENTITY_COLUMNS = ("service_id", "group_id", "source", "project_id", "service_name", "instance_name", "role")
MAX_SPAN_MS = 15 * 86_400_000


class SketchColumnsLike(Protocol):
    @property
    def scale(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def sum(self) -> float: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...
    @property
    def zero_count(self) -> int: ...
    @property
    def positive_keys(self) -> np.ndarray: ...
    @property
    def positive_counts(self) -> np.ndarray: ...
    @property
    def negative_keys(self) -> np.ndarray: ...
    @property
    def negative_counts(self) -> np.ndarray: ...


class SketchRowLike(Protocol):
    """What the writer reads from a row (``collector.window.SketchRow`` has these)."""

    @property
    def metric(self) -> str: ...
    @property
    def labels(self) -> Labels: ...
    @property
    def window_start_ms(self) -> int: ...
    @property
    def width_s(self) -> int: ...
    @property
    def columns(self) -> SketchColumnsLike: ...
    @property
    def row_id(self) -> int: ...


@dataclass(frozen=True, slots=True, eq=False)
class MergedSketch:
    """Every row of one period at one scale, as ``sumMap``/``sum``/``min``/``max`` merged them."""

    period_start_ms: int
    scale: int
    count: int
    sum: float
    min: float
    max: float
    zero_count: int
    positive_keys: np.ndarray
    positive_counts: np.ndarray
    negative_keys: np.ndarray
    negative_counts: np.ndarray


class SketchWriter:
    """``SketchWriter(backend).write(windows.drain(now_s))``: one insert per batch of rows."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        # Rows older than the rollup job's horizon are marked, so their buckets are recomputed.
        self._late = LateMarker(backend)

    def write(self, rows: Sequence[SketchRowLike]) -> int:
        """Insert the rows; returns how many were written."""
        if not rows:
            return 0
        self._backend.insert("sketches", to_table(rows))
        starts = [row.window_start_ms for row in rows]
        self._late(min(starts), max(starts))
        return len(rows)


def to_table(rows: Sequence[SketchRowLike]) -> pa.Table:
    """The rows as the table's columns (Arrow), bucket arrays as list columns."""
    label_maps = [dict(row.labels) for row in rows]
    identity = {name: [m.pop(name, "") for m in label_maps] for name in IDENTITY_COLUMNS}
    cols = [row.columns for row in rows]
    return pa.table(
        {
            "metric_name": pa.array([row.metric for row in rows], pa.string()),
            **{name: pa.array(values, pa.string()) for name, values in identity.items()},
            "fingerprint": pa.array([_fingerprint(row.metric, row.labels) for row in rows], pa.uint64()),
            "label_names": pa.array([list(m) for m in label_maps], pa.list_(pa.string())),
            "label_values": pa.array([list(m.values()) for m in label_maps], pa.list_(pa.string())),
            "window_start_ms": pa.array([row.window_start_ms for row in rows], pa.int64()),
            "width_s": pa.array([row.width_s for row in rows], pa.uint32()),
            "scale": pa.array([c.scale for c in cols], pa.int8()),
            "count": pa.array([c.count for c in cols], pa.uint64()),
            "sum": pa.array([c.sum for c in cols], pa.float64()),
            "min": pa.array([c.min for c in cols], pa.float64()),
            "max": pa.array([c.max for c in cols], pa.float64()),
            "zero_count": pa.array([c.zero_count for c in cols], pa.uint64()),
            "positive_keys": _lists([c.positive_keys for c in cols], pa.int32()),
            "positive_counts": _lists([c.positive_counts for c in cols], pa.uint64()),
            "negative_keys": _lists([c.negative_keys for c in cols], pa.int32()),
            "negative_counts": _lists([c.negative_counts for c in cols], pa.uint64()),
            "row_id": pa.array([row.row_id or secrets.randbits(64) or 1 for row in rows], pa.uint64()),
        }
    )


_MERGE_SQL = """
SELECT
    period_start_ms, scale,
    tupleElement(pos, 1) AS positive_keys, tupleElement(pos, 2) AS positive_counts,
    tupleElement(neg, 1) AS negative_keys, tupleElement(neg, 2) AS negative_counts,
    n AS count, total AS sum, lo AS min, hi AS max, zeros AS zero_count
FROM
(
    SELECT
        intDiv(window_start_ms, {{period_ms:Int64}}) * {{period_ms:Int64}} AS period_start_ms,
        scale,
        sumMap(positive_keys, positive_counts) AS pos,
        sumMap(negative_keys, negative_counts) AS neg,
        sum(count) AS n, sum(sum) AS total, min(min) AS lo, max(max) AS hi, sum(zero_count) AS zeros
    FROM ({source})
    GROUP BY period_start_ms, scale
)
ORDER BY period_start_ms, scale
"""
_MERGED_COLUMNS = (
    "window_start_ms, scale, positive_keys, positive_counts, negative_keys, negative_counts, "
    "count, sum, min, max, zero_count"
)
# Windows of one span, from one table; ``{extra}`` narrows it (rollup width).
_SOURCE_SQL = (
    "SELECT {columns} FROM {db}.{table} WHERE metric_name = {{metric:String}} "
    "AND window_start_ms >= {{{lo}:Int64}} AND window_start_ms < {{{hi}:Int64}}{extra}{filters}"
)


class SketchReader:
    """``SketchReader(backend).merged("infer_service_first_token_cost", {"source": pod}, t0, t1, 60_000)``."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def merged(
        self, metric: str, filters: dict[str, str], start_ms: int, end_ms: int, period_ms: int
    ) -> list[MergedSketch]:
        """Per period (aligned to multiples of ``period_ms`` since the epoch) and scale, every matching
        window merged: windows whose start is in ``[start_ms, end_ms)``; empty periods are absent."""
        unknown = set(filters) - set(IDENTITY_COLUMNS)
        if unknown:
            raise ValueError(f"cannot filter sketches on {sorted(unknown)}; use {list(IDENTITY_COLUMNS)}")
        if period_ms <= 0:
            raise ValueError("period must be positive")
        if not 0 <= end_ms - start_ms <= MAX_SPAN_MS:
            raise ValueError("span must be between 0 and 15 days")
        presence = getattr(self._backend, "sketch_presence", None)  # chDB: store.sketch_presence
        if presence is not None and not presence.may_hold(self._backend, metric, start_ms, end_ms - 1):
            return []
        names = sorted(filters)
        db = self._backend.database
        where = "".join(f" AND {name} = {{f_{name}:String}}" for name in names)
        params: dict[str, object] = {"metric": metric, "period_ms": period_ms}
        params.update({f"f_{name}": filters[name] for name in names})
        # Whole rollup buckets where they tile the span (sketch_rollups), 10 s windows for the rest.
        width = widest_tiling(WIDTHS_MS, period_ms, np.array([start_ms, end_ms], dtype=np.int64))
        done = read_done(self._backend).get(width) if width else None
        cut = start_ms if done is None else min(max(done, start_ms), end_ms)

        def source(table: str, lo: str, hi: str, extra: str = "", dedup: str = "") -> str:
            return _SOURCE_SQL.format(
                columns=_MERGED_COLUMNS, db=db, table=table, lo=lo, hi=hi, extra=extra, filters=where
            ) + (f" LIMIT 1 BY {dedup}" if dedup else "")

        sources = [source("sketches", "cut", "end_ms", dedup=DEDUP_KEY)]  # each row id once
        params |= {"cut": cut, "end_ms": end_ms}
        if cut > start_ms:
            sources.append(
                source("sketch_rollups FINAL", "start_ms", "cut", " AND width_s = {width_s:UInt32}")
            )
            params |= {"start_ms": start_ms, "width_s": (width or 0) // 1000}
        sql = _MERGE_SQL.format(source=" UNION ALL ".join(f"SELECT * FROM ({s})" for s in sources))
        return from_table(self._backend.query(sql, params))


def from_table(table: pa.Table) -> list[MergedSketch]:
    """Rows of the merge query as records with numpy bucket arrays."""
    if table.num_rows == 0:
        return []
    arrays = {
        name: _split(table.column(name), dtype)
        for name, dtype in (
            ("positive_keys", np.int32),
            ("positive_counts", np.uint64),
            ("negative_keys", np.int32),
            ("negative_counts", np.uint64),
        )
    }
    scalars = {
        name: table.column(name).to_pylist()
        for name in ("period_start_ms", "scale", "count", "sum", "min", "max", "zero_count")
    }
    return [
        MergedSketch(
            period_start_ms=scalars["period_start_ms"][i],
            scale=scalars["scale"][i],
            count=scalars["count"][i],
            sum=scalars["sum"][i],
            min=scalars["min"][i],
            max=scalars["max"][i],
            zero_count=scalars["zero_count"][i],
            positive_keys=arrays["positive_keys"][i],
            positive_counts=arrays["positive_counts"][i],
            negative_keys=arrays["negative_keys"][i],
            negative_counts=arrays["negative_counts"][i],
        )
        for i in range(table.num_rows)
    ]


def _fingerprint(metric: str, labels: Labels) -> int:
    return fingerprint(to_labels({**dict(labels), METRIC_NAME: metric}))


def _lists(arrays: list[np.ndarray], value_type: pa.DataType) -> pa.Array:
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int32, count=len(arrays))
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int32)))
    values = np.concatenate(arrays) if arrays else np.empty(0)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, value_type))


def _split(column: pa.ChunkedArray, dtype: type[np.generic]) -> list[np.ndarray]:
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return np.split(flat, np.cumsum(lengths)[:-1])
