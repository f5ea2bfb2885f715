"""Rollups: 1 min, 5 min, 15 min and 1 h aggregates of every series, kept as samples arrive.

A 15-day, 1-minute-step ``rate(x[5m])`` needs, per window, only the first and last points, their
count and the counter resets in between; ``sum_over_time`` only sums, and so on. The ``rollups``
table keeps exactly those aggregates per series and bucket ``(end - width, end]``
(``model.rollups.BUCKET_COLUMNS``), and the query side composes windows from them
(``query.promql.rollup_eval``) instead of reading every raw sample.

Who computes what:

- ``RollupJob.run()`` (the server calls it every minute) rolls each width forward to
  ``done = now - lag`` rounded down to the width, from deduplicated raw samples, in SQL, in chunks
  of at most an hour of raw data; it records ``done`` per width in ``rollup_state``.
- Late samples (a disk buffer replayed after an outage, a backfill): the writer calls
  ``LateMarker`` after every stored batch; a batch reaching back before ``now - late_after`` records
  its time span in ``rollup_dirty`` (stamped with the server's clock), and the next run recomputes
  the buckets it touches. A recomputed bucket replaces the older row (``version``); nothing is
  counted twice, which materialised views (which see every insert block, replays included) would.
- Reads use a bucket only when it is at or before ``done`` of its width; later buckets are
  aggregated from raw samples by the same SQL at query time, so an answer never depends on when
  the job last ran.

The writer's horizon (``late_after``, 1 min) is shorter than the job's lag (3 min), so samples
from a clock up to 2 min ahead or behind the server's are still caught.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from model.rollups import BUCKET_COLUMNS, WIDTHS_MS
from store.backend import Backend
from store.sketch_dedup import sketch_rows_sql

HOUR_MS = 3_600_000
# Prometheus' staleness marker as the 8 bytes ClickHouse holds (little-endian 0x7ff0000000000002):
# 18.16 cannot reinterpret a Float64 as an integer, but it can as a string.
_STALE_BYTES = "unhex('020000000000F07F')"


def bucket_sql(db: str, width_ms: int, series_filter: str = "") -> str:
    """Aggregates per (metric, series, bucket) of the raw samples with ``{lo:Int64} < ts <= {hi:Int64}``.

    Points are sorted by time within the bucket so first/last/corrections follow Prometheus' order,
    deduplicated per timestamp (a replayed batch before merges), staleness markers left out; one
    GROUP BY does it all (a separate dedup GROUP BY per point doubled the job's time).
    ``series_filter`` is an extra ``AND …`` on ``samples`` (metric names, fingerprints), with its
    values bound by the caller.
    """
    w = int(width_ms)
    pairs = "arrayPopFront(vs), arrayPopBack(vs)"
    return (
        "SELECT metric_name, fingerprint, bucket_ms, "
        "toUInt32(length(vs)) AS count, arraySum(vs) AS sum, "
        "arrayReduce('min', vs) AS min, arrayReduce('max', vs) AS max, "
        "toUInt32(arrayCount(x -> NOT isFinite(x), vs)) AS nonfinite, "
        "ts[1] AS first_ts, vs[1] AS first_value, ts[-1] AS last_ts, vs[-1] AS last_value, "
        "ts[-2] AS prev_ts, vs[-2] AS prev_value, "
        f"arraySum(arrayMap((c, p) -> if(c < p, p, 0.), {pairs})) AS correction, "
        f"toUInt32(arrayCount((c, p) -> c < p, {pairs})) AS resets, "
        f"toUInt32(arrayCount((c, p) -> c != p, {pairs})) AS changes "
        "FROM ("
        "SELECT metric_name, fingerprint, bucket_ms, "
        # a replayed point (before merges) appears twice: keep the first of each timestamp
        "arrayFilter((x, i) -> i = 1 OR sorted_ts[i - 1] != sorted_ts[i], sorted_vs, "
        "arrayEnumerate(sorted_ts)) AS vs, "
        "arrayFilter((t, i) -> i = 1 OR sorted_ts[i - 1] != t, sorted_ts, arrayEnumerate(sorted_ts)) AS ts "
        "FROM ("
        f"SELECT metric_name, fingerprint, intDiv(ts_ms + {w - 1}, {w}) * {w} AS bucket_ms, "
        "arraySort((x, t) -> t, groupArray(value), groupArray(ts_ms)) AS sorted_vs, "
        "arraySort(groupArray(ts_ms)) AS sorted_ts "
        f"FROM {db}.samples "
        f"WHERE ts_ms > {{lo:Int64}} AND ts_ms <= {{hi:Int64}} {series_filter}"
        f"AND reinterpretAsString(value) != {_STALE_BYTES} "
        "GROUP BY metric_name, fingerprint, bucket_ms))"
    )


_IDENTITY = "service_id, group_id, source, project_id, service_name, instance_name, role"
SKETCH_COLUMNS = (
    f"metric_name, {_IDENTITY}, fingerprint, label_names, label_values, window_start_ms, width_s, "
    "scale, version, count, sum, min, max, zero_count, positive_keys, positive_counts, "
    "negative_keys, negative_counts"
).split(", ")


def sketch_bucket_sql(db: str, width_ms: int, version: int) -> str:
    """Window sketches starting in ``[{lo:Int64}, {hi:Int64})`` merged per series, bucket and scale."""
    w = int(width_ms)
    return (
        f"SELECT metric_name, {_IDENTITY}, fingerprint, label_names, label_values, window_start_ms, "
        f"toUInt32({w // 1000}) AS width_s, scale, toInt64({int(version)}) AS version, count, sum, min, "
        "max, zero_count, tupleElement(pos, 1) AS positive_keys, tupleElement(pos, 2) AS positive_counts, "
        "tupleElement(neg, 1) AS negative_keys, tupleElement(neg, 2) AS negative_counts FROM ("
        f"SELECT metric_name, {_IDENTITY}, fingerprint, any(label_names) AS label_names, "
        f"any(label_values) AS label_values, intDiv(window_start_ms, {w}) * {w} AS window_start_ms, "
        "scale, sum(count) AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max, "
        "sum(zero_count) AS zero_count, sumMap(positive_keys, positive_counts) AS pos, "
        f"sumMap(negative_keys, negative_counts) AS neg FROM ("
        + sketch_rows_sql(
            "*", f"{db}.sketches", "window_start_ms >= {lo:Int64} AND window_start_ms < {hi:Int64}"
        )
        + ") "
        f"GROUP BY metric_name, {_IDENTITY}, fingerprint, window_start_ms, scale)"
    )


def _read_state(backend: Backend) -> dict[str, int]:
    """The newest value of every ``rollup_state`` entry."""
    table = backend.query(
        f"SELECT name, argMax(value, at_ms) AS v FROM {backend.database}.rollup_state GROUP BY name"
    )
    return dict(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))


def _done(state: dict[str, int]) -> dict[int, int]:
    return {int(name.removeprefix("done_")): int(v) for name, v in state.items() if name.startswith("done_")}


def read_done(backend: Backend) -> dict[int, int]:
    """Per width (ms), the end of the last bucket the job has computed (absent: none yet)."""
    return _done(_read_state(backend))


def _server_now_s(backend: Backend) -> int:
    return int(backend.query("SELECT toUInt32(now()) AS s").column(0)[0].as_py())


@dataclass
class LateMarker:
    """``SampleWriter(on_stored=LateMarker(backend))``: records stored spans older than the horizon."""

    backend: Backend
    late_after_ms: int = 60_000
    clock: Callable[[], float] = time.time

    def __call__(self, min_ts: int, max_ts: int) -> None:
        if min_ts >= self.clock() * 1000 - self.late_after_ms:
            return
        self.backend.execute(
            f"INSERT INTO {self.backend.database}.rollup_dirty (from_ms, to_ms, at_s) "
            "SELECT {f:Int64}, {t:Int64}, toUInt32(now())",
            {"f": int(min_ts), "t": int(max_ts)},
        )


@dataclass
class RollupJob:
    """Keeps ``rollups`` up to date; ``run()`` is idempotent and cheap when nothing is new.

    ``start_ms``: how far back the first run reaches (default: the oldest sample stored, which
    retention bounds to 15 days).
    """

    backend: Backend
    lag_ms: int = 180_000
    widths_ms: tuple[int, ...] = WIDTHS_MS
    start_ms: int | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"runs": 0, "chunks": 0, "late_spans": 0})

    def run(self, now_ms: int | None = None) -> dict[int, int]:
        """Recompute late spans, then roll every width forward; returns ``done`` per width.

        Late spans first, and only over what earlier runs finished: buckets this run adds read every
        sample stored before it, and a sample stored after that is marked at or after ``now_s``,
        which the next run reads again.
        """
        now_s = _server_now_s(self.backend)
        now = now_s * 1000 if now_ms is None else int(now_ms)
        version = int(time.time() * 1000)
        state = _read_state(self.backend)
        done = _done(state)
        self._recompute_late(done, state.get("dirty_seen_s", 0), now_s, version)
        start = self._first_start(done)
        new_done: dict[int, int] = {}
        spans: dict[int, tuple[int, int]] = {}
        for width in self.widths_ms:
            target = (now - self.lag_ms) // width * width
            previous = done.get(width)
            lo = (
                previous
                if previous is not None
                else (start // width * width if start is not None else target)
            )
            if target > lo:
                spans[width] = (lo, target)
        if spans:
            hours = self._hours_with_data(
                min(a for a, _ in spans.values()), max(b for _, b in spans.values())
            )
            for width, (lo, target) in spans.items():
                for a, b in _chunks(lo, target):
                    if (b - 1) // HOUR_MS in hours:  # a chunk lies within one hour
                        self._compute(width, a, b, version)
                new_done[width] = target
        if new_done:
            self._save({f"done_{w}": v for w, v in new_done.items()}, version)
        self.stats["runs"] += 1
        return done | new_done

    def _hours_with_data(self, lo: int, hi: int) -> set[int]:
        """Hours ``(k h, (k+1) h]`` (as k) holding samples in ``(lo, hi]``: a first run skips empty ones."""
        db = self.backend.database
        table = self.backend.query(
            f"SELECT DISTINCT intDiv(ts_ms - 1, {HOUR_MS}) AS h FROM {db}.samples "
            "WHERE ts_ms > {lo:Int64} AND ts_ms <= {hi:Int64}",
            {"lo": int(lo), "hi": int(hi)},
        )
        windows = self.backend.query(
            f"SELECT DISTINCT intDiv(window_start_ms, {HOUR_MS}) AS h FROM {db}.sketches "
            "WHERE window_start_ms >= {lo:Int64} AND window_start_ms < {hi:Int64}",
            {"lo": int(lo), "hi": int(hi)},
        )
        return set(table.column(0).to_pylist()) | set(windows.column(0).to_pylist())

    def _first_start(self, done: dict[int, int]) -> int | None:
        if self.start_ms is not None or all(w in done for w in self.widths_ms):
            return self.start_ms
        db = self.backend.database
        firsts = [
            self.backend.query(f"SELECT count() AS n, min({column}) AS t FROM {db}.{table}")
            for table, column in (("samples", "ts_ms"), ("sketches", "window_start_ms"))
        ]
        starts = [int(t.column(1)[0].as_py()) - 1 for t in firsts if t.column(0)[0].as_py()]
        return min(starts) if starts else None

    def _compute(self, width: int, lo: int, hi: int, version: int) -> None:
        """Insert the buckets of raw time ``(lo, hi]`` (both multiples of ``width``), and the sketch
        buckets of the windows starting in ``[lo, hi)``."""
        db = self.backend.database
        columns = ", ".join(BUCKET_COLUMNS)
        params = {"lo": int(lo), "hi": int(hi)}
        self.backend.execute(
            f"INSERT INTO {db}.rollups (metric_name, width_s, fingerprint, bucket_ms, version, {columns}) "
            f"SELECT metric_name, toUInt32({width // 1000}), fingerprint, bucket_ms, toInt64({version}), "
            f"{columns} FROM ({bucket_sql(db, width)})",
            params,
        )
        sketch_columns = ", ".join(SKETCH_COLUMNS)
        self.backend.execute(
            f"INSERT INTO {db}.sketch_rollups ({sketch_columns}) "
            f"SELECT {sketch_columns} FROM ({sketch_bucket_sql(db, width, version)})",
            params,
        )
        self.stats["chunks"] += 1

    def _recompute_late(self, done: dict[int, int], seen: int, now_s: int, version: int) -> None:
        """Recompute the finished buckets that late samples fell into, then move the mark on."""
        until = now_s
        table = self.backend.query(
            f"SELECT from_ms, to_ms FROM {self.backend.database}.rollup_dirty "
            "WHERE at_s > {a:UInt32} AND at_s <= {b:UInt32}",
            {"a": seen, "b": until},
        )
        spans = _merge(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
        for lo, hi in spans:
            for width in self.widths_ms:
                end = done.get(width)
                if end is None:
                    continue
                a, b = (lo - 1) // width * width, min(-(-hi // width) * width, end)
                for x, y in _chunks(a, b):
                    self._compute(width, x, y, version)
        self.stats["late_spans"] += len(spans)
        # Rows stamped in the current second may still be arriving: the next run reads them again.
        self._save({"dirty_seen_s": until - 1}, version)

    def _save(self, values: dict[str, int], version: int) -> None:
        self.backend.insert(
            "rollup_state",
            pa.table(
                {
                    "name": pa.array(list(values), pa.string()),
                    "value": pa.array(list(values.values()), pa.int64()),
                    "at_ms": pa.array([version] * len(values), pa.int64()),
                }
            ),
        )


def _chunks(lo: int, hi: int, size: int = HOUR_MS) -> Iterator[tuple[int, int]]:
    """``(lo, hi]`` cut at multiples of ``size`` (bounded memory for the dedup in ``bucket_sql``)."""
    while lo < hi:
        nxt = min(hi, (lo // size + 1) * size)
        yield lo, nxt
        lo = nxt


def _merge(spans: Any) -> list[tuple[int, int]]:
    """Overlapping or touching ``(from, to)`` spans joined, in order."""
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]
