"""Sketch presence (chDB): a read it answers empty without a statement is empty in the tables too."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.window import WindowedSketches
from store.open import Store
from store.rollups import RollupJob
from store.sketch_presence import SketchPresence
from store.sketches import MergedSketch, SketchReader, SketchWriter

METRICS = ("ttft", "tpot", "e2e")
T0_MS = 1_700_002_800_000  # a whole hour
HOUR_MS = 3_600_000


# The store fixture of conftest.py, on chDB only: presence is kept where this process is the writer.
pytestmark = pytest.mark.parametrize("store", ["chdb"], indirect=True)


def _write(store: Store, metric: str, minute: int, service: str = "s") -> None:
    windows = WindowedSketches()
    at_s = (T0_MS + minute * 60_000) / 1000
    windows.observe(metric, {"service_id": service, "source": "p"}, np.array([1.0, 2.0]), at_s)
    SketchWriter(store.backend).write(windows.drain_all())


def _windows_in_sql(store: Store, metric: str, lo_ms: int, hi_ms: int) -> int:
    db = store.backend.database
    table = store.backend.query(
        f"SELECT count() AS n FROM (SELECT metric_name, window_start_ms FROM {db}.sketches UNION ALL "
        f"SELECT metric_name, window_start_ms FROM {db}.sketch_rollups) "
        "WHERE metric_name = {m:String} AND window_start_ms >= {lo:Int64} AND window_start_ms <= {hi:Int64}",
        {"m": metric, "lo": lo_ms, "hi": hi_ms},
    )
    return int(table.column(0)[0].as_py())


def _merged_without_presence(store: Store, *args: Any) -> list[Any]:
    presence = store.backend.sketch_presence
    store.backend.sketch_presence = None
    try:
        return SketchReader(store.backend).merged(*args)
    finally:
        store.backend.sketch_presence = presence


def _plain(rows: list[MergedSketch]) -> list[tuple[Any, ...]]:
    return [tuple(np.asarray(v).tolist() for v in dataclasses.astuple(row)) for row in rows]


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(METRICS), st.integers(0, 6 * 60)),
        st.tuples(st.just("rollup"), st.integers(1, 7)),
        st.tuples(st.just("drop")),
    ),
    max_size=8,
)
_READS = st.lists(
    st.tuples(st.sampled_from(METRICS), st.integers(-120, 7 * 60), st.integers(1, 8 * 60)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS, reads=_READS)
# A rollup bucket starting before the first window in it, and data dropped after the spans were read.
@example(ops=[("write", "ttft", 7), ("rollup", 7)], reads=[("ttft", 0, 5)])
@example(ops=[("write", "ttft", 7), ("drop",), ("write", "tpot", 9)], reads=[("ttft", 0, 60)])
def test_what_it_rules_out_the_tables_do_not_hold(store: Store, ops: list[tuple[Any, ...]], reads) -> None:
    """Writes, rollup passes (statements it does not reload after) and dropped data in any order:
    whenever presence says "nothing", the tables hold nothing there, and every read equals the
    read that asks the store."""
    db = store.backend.database
    for table in ("sketches", "sketch_rollups"):
        store.backend.execute(f"TRUNCATE TABLE {db}.{table}")
    presence: SketchPresence = store.backend.sketch_presence
    for op in ops:
        if op[0] == "write":
            _write(store, op[1], op[2])
        elif op[0] == "rollup":
            RollupJob(store.backend).run(now_ms=T0_MS + op[1] * HOUR_MS)
        else:
            store.backend.execute(f"TRUNCATE TABLE {db}.sketches")
        for metric, start_min, length_min in reads:
            lo = T0_MS + start_min * 60_000
            hi = lo + length_min * 60_000
            if not presence.may_hold(store.backend, metric, lo, hi - 1):
                assert _windows_in_sql(store, metric, lo, hi - 1) == 0
            merged = SketchReader(store.backend).merged(metric, {}, lo, hi, 60_000)
            assert _plain(merged) == _plain(_merged_without_presence(store, metric, {}, lo, hi, 60_000))


def test_a_metric_never_sketched_is_answered_without_a_merge(store: Store, monkeypatch) -> None:
    _write(store, "ttft", 0)
    reader = SketchReader(store.backend)
    assert reader.merged("ttft", {}, T0_MS, T0_MS + HOUR_MS, 60_000)  # loads the spans
    statements: list[str] = []
    real = store.backend.query
    monkeypatch.setattr(
        store.backend, "query", lambda sql, params=None: statements.append(sql) or real(sql, params)
    )
    assert reader.merged("tpot", {}, T0_MS, T0_MS + HOUR_MS, 60_000) == []
    assert reader.merged("ttft", {}, T0_MS + 2 * HOUR_MS, T0_MS + 3 * HOUR_MS, 60_000) == []
    assert statements == []
    _write(store, "tpot", 1)  # fed by the insert: found without reading the spans again
    assert reader.merged("tpot", {}, T0_MS, T0_MS + HOUR_MS, 60_000)
    assert not any("GROUP BY metric_name" in s for s in statements)


def _on_first_read_of_spans(store: Store, monkeypatch, then: Callable[[], None]) -> list[str]:
    """Run ``then`` right after the spans are first read from the tables, before they are kept;
    the statements that read them, as they happen."""
    real = store.backend.query
    loads: list[str] = []

    def query(sql: str, params: Any = None) -> pa.Table:
        table = real(sql, params)
        if "GROUP BY metric_name" in sql:
            loads.append(sql)
            if len(loads) == 1:
                then()
        return table

    monkeypatch.setattr(store.backend, "query", query)
    return loads


def test_an_insert_during_the_read_of_the_spans_is_kept(store: Store, monkeypatch) -> None:
    _write(store, "ttft", 0)
    loads = _on_first_read_of_spans(store, monkeypatch, lambda: _write(store, "tpot", 3))
    presence = store.backend.sketch_presence
    assert presence.may_hold(store.backend, "ttft", T0_MS, T0_MS + HOUR_MS)
    assert presence.may_hold(store.backend, "tpot", T0_MS, T0_MS + HOUR_MS)
    assert len(loads) == 1  # found in memory, not by reading the tables again


def test_a_statement_during_the_read_of_the_spans_is_not_trusted(store: Store, monkeypatch) -> None:
    _write(store, "e2e", 0)
    db = store.backend.database
    loads = _on_first_read_of_spans(  # a statement adds ttft's windows
        store,
        monkeypatch,
        lambda: store.backend.execute(
            f"INSERT INTO {db}.sketches SELECT * REPLACE ('ttft' AS metric_name) FROM {db}.sketches"
        ),
    )
    presence = store.backend.sketch_presence
    assert presence.may_hold(store.backend, "ttft", T0_MS, T0_MS + HOUR_MS)  # not "nothing"
    assert presence.may_hold(store.backend, "ttft", T0_MS, T0_MS + HOUR_MS)  # read again: found
    assert len(loads) == 2
