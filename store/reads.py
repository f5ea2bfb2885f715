"""Reads for the query side: matchers, metric name and time range pushed into SQL as bound parameters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from typing import Any

import numpy as np
import pyarrow as pa

from model.labels import METRIC_NAME, Matcher, MatchOp, to_labels
from model.rollups import BASE_COLUMNS, BUCKET_COLUMNS, WIDTHS_MS, Buckets
from model.series import Series, StepWindows
from store.backend import Backend
from store.recent_points import RecentPoints
from store.rollups import bucket_sql, read_done
from store.series_index import SeriesIndex
from store.series_lookups import SeriesLookups
from store.write_marks import WriteMarks

_DAY_MS = 86_400_000


# Series whose fingerprints a read sends as a list; more are found again by a subquery.
MAX_LISTED_SERIES = 2000
_NEWEST = 2**63 - 1  # version of buckets aggregated at query time: no stored row is newer
_MAX_DAY = (dt.date(2149, 6, 6) - dt.date(1970, 1, 1)).days  # ClickHouse's Date range


def _day_number(ts_ms: int) -> int:
    """Days since 1970 of a timestamp, clamped to ClickHouse's Date range (API open ends are ±huge)."""
    return min(max(ts_ms // _DAY_MS, 0), _MAX_DAY)


def _day(ts_ms: int) -> str:
    """The Date of a timestamp, as ``_day_number`` clamps it."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=_day_number(ts_ms))).isoformat()


def matchers_sql(matchers: list[Matcher], params: dict[str, Any]) -> list[str]:
    """SQL conditions over the series table, one per matcher; values go into ``params``.

    A missing label reads as "" (indexOf → 0 → the array's default), as Prometheus treats it.
    Regexes are anchored like Prometheus's, and evaluated by ClickHouse's RE2.
    """
    conditions = []
    for i, m in enumerate(matchers):
        if m.name == METRIC_NAME:
            column = "metric_name"
        else:
            params[f"ln{i}"] = m.name
            column = f"label_values[indexOf(label_names, {{ln{i}:String}})]"
        value = f"{{lv{i}:String}}"
        if m.op in (MatchOp.RE, MatchOp.NRE):
            params[f"lv{i}"] = f"^(?:{m.value})$"
            condition = f"match({column}, {value})"
            conditions.append(condition if m.op is MatchOp.RE else f"NOT {condition}")
        else:
            params[f"lv{i}"] = m.value
            conditions.append(f"{column} {'=' if m.op is MatchOp.EQ else '!='} {value}")
    return conditions


class ClickHouseQuerier:
    """Implements ``query.promql.storage.Querier`` over the store's tables.

    Every read carries ``max_execution_time`` so one runaway query cannot hold the (single-session)
    backend; ClickHouse's timeout surfaces as the builtin ``TimeoutError``, which the engine reports
    as Prometheus' ``timeout``.
    """

    # ``select`` returns each series' points sorted by time, one per timestamp (see its dedupe), so
    # the engine need not check them again.
    points_sorted_unique = True
    # ``select`` takes ``windows`` (the engine asks through wrappers, which forward attributes).
    reads_step_windows = True
    # Rollup widths ``select_buckets`` serves (the engine composes aligned range functions from them).
    bucket_widths = WIDTHS_MS
    # ``select`` returns series in Prometheus' order (by their labels), as ``find_series`` finds
    # them: the engine need not sort them again. Sorted once per look-up kept, not per query.
    series_in_label_order = True

    def __init__(self, backend: Backend, max_execution_s: float = 120.0) -> None:
        self._backend = backend
        self._db = backend.database
        self.max_execution_s = max_execution_s
        self.lookups = SeriesLookups(backend)
        # The backend's newest points in memory (chDB): reads they cover are answered there. None:
        # always the store (a ClickHouse server; tests of the rollups themselves).
        self.recent: RecentPoints | None = getattr(backend, "recent", None)
        # Every series in memory (chDB): look-ups are answered there while it can (store.series_index).
        self.index: SeriesIndex | None = getattr(backend, "series_index", None)
        # Every write of points, with its oldest time (chDB): which steps of a kept answer a later
        # write can have changed (store.write_marks). None: the store cannot tell.
        self.point_marks: WriteMarks | None = getattr(backend, "point_marks", None)

    def data_stamp(self) -> int | None:
        """A count that changes with every write that could change an answer other than by adding
        points (new series, any statement: DDL, mutations, dropped partitions); points go by
        ``point_marks``. None where the backend cannot tell (a ClickHouse server others write
        to): then no answer may be kept."""
        series = getattr(self._backend, "series_changes", None)
        return series if isinstance(series, int) and self.point_marks is not None else None

    def result_version(self) -> Hashable | None:
        """A value that changes with every write to the store (any insert, any statement), so two
        evaluations that read the same one read the same data; None where the backend cannot tell
        (a ClickHouse server others write to). Keys what queries share (``shared_results``)."""
        version = getattr(self._backend, "data_version", None)
        return version if isinstance(version, int) else None

    def _query(self, sql: str, params: dict[str, Any]) -> Any:
        settings = f" SETTINGS max_execution_time = {max(1, round(self.max_execution_s))}"
        try:
            return self._backend.query(sql + settings, params)
        except Exception as exc:
            if "TIMEOUT_EXCEEDED" in str(exc):
                raise TimeoutError("query timed out in query execution") from exc
            raise

    def _where(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"d0": _day(start_ms), "d1": _day(end_ms)}
        conditions = ["day BETWEEN {d0:Date} AND {d1:Date}", *matchers_sql(matchers, params)]
        return " AND ".join(conditions), params

    def find_series(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> dict[int, dict[str, str]]:
        """Label sets (with ``__name__``) of series matching all matchers, seen on days in range,
        in order of their labels (``to_labels``), as Prometheus' storage yields series.

        Callers must not change the label sets (they may be a cached answer's).
        """
        key = ("series", tuple(matchers), _day_number(start_ms), _day_number(end_ms))
        return dict(self.lookups.cached(key, lambda: self._find_series(matchers, start_ms, end_ms)))

    def _find_series(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> dict[int, dict[str, str]]:
        found = self._found_series(matchers, start_ms, end_ms)
        return dict(sorted(found.items(), key=lambda item: to_labels(item[1])))

    def _found_series(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> dict[int, dict[str, str]]:
        if self.index is not None:
            found = self.index.find(matchers, _day_number(start_ms), _day_number(end_ms))
            if found is not None:
                return found
        where, params = self._where(matchers, start_ms, end_ms)
        table = self._query(
            f"SELECT fingerprint, any(metric_name) AS name, any(label_names) AS names, "
            f"any(label_values) AS vals FROM {self._db}.series WHERE {where} GROUP BY fingerprint",
            params,
        )
        out: dict[int, dict[str, str]] = {}
        for fp, name, names, vals in zip(*(table.column(i).to_pylist() for i in range(4)), strict=True):
            labels = dict(zip(names, vals, strict=True))
            labels[METRIC_NAME] = name
            out[fp] = labels
        return out

    def select(
        self,
        matchers: list[Matcher],
        start_ms: int,
        end_ms: int,
        max_samples: int | None = None,
        windows: StepWindows | None = None,
    ) -> list[Series]:
        """As the protocol, in the order of ``find_series``; with ``max_samples``, reading stops
        there (the caller refuses the query); with ``windows`` (ending at ``end_ms``), a read from
        the store leaves out the points none of them holds, in SQL, before they are sent."""
        series = self.find_series(matchers, start_ms, end_ms)
        if not series:
            return []
        if self.recent is not None and self.recent.covers(start_ms):
            recent = self.recent.select(series, start_ms, end_ms, max_samples)
            if recent is not None:
                return recent
        limit = f" LIMIT {int(max_samples)}" if max_samples is not None else ""
        params: dict[str, Any] = {"t0": start_ms, "t1": end_ms}
        series_filter = self._series_filter(series, matchers, start_ms, end_ms, params)
        in_windows = ""
        if windows is not None and windows.window_ms < windows.step_ms and windows.last_ms >= end_ms:
            # (last - ts) % step: how long before its next step a point is; every time read is at or
            # before ``last``, so the remainder is never negative (ClickHouse's % keeps the sign).
            in_windows = " AND ({wl:Int64} - ts_ms) % {ws:Int64} <= {ww:Int64}"
            params |= {"wl": windows.last_ms, "ws": windows.step_ms, "ww": windows.window_ms}
        # ORDER BY the table's own key: ClickHouse reads in order instead of sorting the result.
        table = self._query(
            f"SELECT fingerprint, ts_ms, value FROM {self._db}.samples "
            f"WHERE {series_filter} AND ts_ms >= {{t0:Int64}} AND ts_ms <= {{t1:Int64}}{in_windows} "
            f"ORDER BY metric_name, fingerprint, ts_ms{limit}",
            params,
        )
        fps = table.column("fingerprint").to_numpy()
        ts = table.column("ts_ms").to_numpy()
        values = table.column("value").to_numpy()
        if not len(fps):
            return []
        # Until ClickHouse merges parts, a replayed point can appear twice: keep one per timestamp.
        repeated = (fps[1:] == fps[:-1]) & (ts[1:] == ts[:-1])
        if repeated.any():
            keep = np.r_[~repeated, True]
            fps, ts, values = fps[keep], ts[keep], values[keep]
        starts = np.r_[0, np.flatnonzero(fps[1:] != fps[:-1]) + 1]
        ends = np.r_[starts[1:], len(fps)]
        # a series first written between the two reads is left for the next query to see
        read = dict(zip(fps[starts].tolist(), zip(starts.tolist(), ends.tolist(), strict=True), strict=True))
        out = []
        for fp, labels in series.items():  # in their labels' order
            if fp in read:
                lo, hi = read[fp]
                out.append(Series(dict(labels), ts[lo:hi], values[lo:hi]))
        return out

    def _series_filter(
        self,
        series: dict[int, dict[str, str]],
        matchers: list[Matcher],
        start_ms: int,
        end_ms: int,
        params: dict[str, Any],
    ) -> str:
        """SQL over ``samples``/``rollups`` keeping the series ``find_series`` found; binds into ``params``.

        Up to ``MAX_LISTED_SERIES`` series, their fingerprints go as one bound array (a dashboard
        panel's few dozen: measured a third of the time of finding them again). Past that, they are
        found again by ClickHouse, as a set from the same conditions, instead of thousands of
        numbers parsed per query; with only name matchers, the name alone already selects exactly
        those series.
        """
        params["names"] = sorted({labels[METRIC_NAME] for labels in series.values()})
        out = "metric_name IN {names:Array(String)}"
        if len(series) <= MAX_LISTED_SERIES and any(m.name != METRIC_NAME for m in matchers):
            params["fps"] = sorted(series)
            out += " AND fingerprint IN {fps:Array(UInt64)}"
        elif any(m.name != METRIC_NAME for m in matchers):
            where, where_params = self._where(matchers, start_ms, end_ms)
            params |= where_params
            out += f" AND fingerprint IN (SELECT fingerprint FROM {self._db}.series WHERE {where})"
        return out

    def select_buckets(
        self,
        matchers: list[Matcher],
        start_ms: int,
        end_ms: int,
        width_ms: int,
        columns: tuple[str, ...] = BUCKET_COLUMNS,
    ) -> Buckets | None:
        """Rollup buckets of ``width_ms`` ending in ``[start_ms, end_ms]`` (multiples of the width).

        Buckets the rollup job has finished come from ``rollups`` (newest version of each); later
        ones are aggregated from raw samples by the same SQL now, so the answer does not depend
        on when the job last ran. ``columns``: which ``BUCKET_COLUMNS`` to read (the base ones always).
        """
        if self.recent is not None and self.recent.covers(start_ms - width_ms):
            return None  # the raw points are in memory: cheaper than any store read
        wanted = tuple(c for c in BUCKET_COLUMNS if c in columns or c in BASE_COLUMNS)
        series = self.find_series(matchers, start_ms - width_ms, end_ms)
        if not series:
            return _bucket_block(series, [], wanted)
        done = read_done(self._backend).get(width_ms)
        tables = []
        columns_sql = ", ".join(wanted)
        bound: dict[str, Any] = {}
        series_filter = self._series_filter(series, matchers, start_ms - width_ms, end_ms, bound)
        if done is not None and done >= start_ms:
            params = bound | {"w": width_ms // 1000, "b0": start_ms, "b1": min(end_ms, done)}
            tables.append(
                self._query(
                    f"SELECT fingerprint, bucket_ms, version, {columns_sql} FROM {self._db}.rollups "
                    f"WHERE {series_filter} AND width_s = {{w:UInt32}} "
                    "AND bucket_ms >= {b0:Int64} AND bucket_ms <= {b1:Int64} "
                    # the table's own order: read in order, and nothing left to sort here
                    "ORDER BY metric_name, width_s, fingerprint, bucket_ms",
                    params,
                )
            )
        raw_from = start_ms - width_ms if done is None else max(start_ms - width_ms, done)
        if raw_from < end_ms:
            params = bound | {"lo": raw_from, "hi": end_ms}
            tables.append(
                self._query(
                    f"SELECT fingerprint, bucket_ms, toInt64({_NEWEST}) AS version, {columns_sql} "
                    f"FROM ({bucket_sql(self._db, width_ms, 'AND ' + series_filter + ' ')})",
                    params,
                )
            )
        return _bucket_block(series, tables, wanted)

    def label_names(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        key = ("names", tuple(matchers), _day_number(start_ms), _day_number(end_ms))
        return list(self.lookups.cached(key, lambda: self._label_names(matchers, start_ms, end_ms)))

    def _label_names(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        if self.index is not None:
            names = self.index.label_names(matchers, _day_number(start_ms), _day_number(end_ms))
            if names is not None:
                return names
        where, params = self._where(matchers, start_ms, end_ms)
        table = self._query(
            f"SELECT DISTINCT arrayJoin(label_names) AS n FROM {self._db}.series WHERE {where}", params
        )
        names = set(table.column(0).to_pylist())
        if names or self._any_series(where, params):
            names.add(METRIC_NAME)
        return sorted(names)

    def _any_series(self, where: str, params: dict[str, Any]) -> bool:
        table = self._query(f"SELECT count() FROM {self._db}.series WHERE {where}", params)
        return bool(table.column(0)[0].as_py())

    def label_values(self, name: str, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        key = ("values", name, tuple(matchers), _day_number(start_ms), _day_number(end_ms))
        return list(self.lookups.cached(key, lambda: self._label_values(name, matchers, start_ms, end_ms)))

    def _label_values(self, name: str, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        if self.index is not None:
            values = self.index.label_values(name, matchers, _day_number(start_ms), _day_number(end_ms))
            if values is not None:
                return values
        where, params = self._where(matchers, start_ms, end_ms)
        if name == METRIC_NAME:
            column = "metric_name"
        else:
            params["target"] = name
            column = "label_values[indexOf(label_names, {target:String})]"
            where += " AND has(label_names, {target:String})"
        table = self._query(f"SELECT DISTINCT {column} AS v FROM {self._db}.series WHERE {where}", params)
        return sorted(v for v in table.column(0).to_pylist() if v != "")


def _bucket_block(
    series: dict[int, dict[str, str]], tables: list[pa.Table], columns: tuple[str, ...]
) -> Buckets:
    """Rows of both sources as one block, by series then bucket, one row per bucket (the newest)."""
    rows = [t for t in tables if t.num_rows]
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return Buckets([], np.zeros(1, dtype=np.int64), empty, dict.fromkeys(columns, empty))
    table = pa.concat_tables([t.cast(rows[0].schema) for t in rows])
    fps = table.column("fingerprint").to_numpy()
    ends = table.column("bucket_ms").to_numpy()
    # One metric's rows read in key order need no sort (the usual long-range read).
    ordered = len(rows) == 1 and bool(
        ((fps[1:] > fps[:-1]) | ((fps[1:] == fps[:-1]) & (ends[1:] > ends[:-1]))).all()
    )
    order = np.arange(len(fps)) if ordered else np.lexsort((table.column("version").to_numpy(), ends, fps))
    fps, ends = fps[order], ends[order]
    newest = np.r_[(fps[1:] != fps[:-1]) | (ends[1:] != ends[:-1]), True]
    # a series first written between the two reads is left for the next query to see
    newest &= np.isin(fps, np.fromiter(series, dtype=np.uint64, count=len(series)))
    order, fps, ends = order[newest], fps[newest], ends[newest]
    starts = np.r_[0, np.flatnonzero(fps[1:] != fps[:-1]) + 1, len(fps)].astype(np.int64)
    labels = [dict(series[fp]) for fp in fps[starts[:-1]].tolist()]
    return Buckets(labels, starts, ends, {c: table.column(c).to_numpy()[order] for c in columns})
