"""chDB inserts over their own connections: large ones cut into row ranges written at once, a failed
range retried whole without duplicates, and queries that do not wait for inserts."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import store.chdb as chdb_store
from store.chdb import PARALLEL_INSERT_ROWS, ChdbBackend
from store.features import Features
from store.schema import render_schema

T0 = 1_700_000_000_000


def _backend(tmp_path: Path, connections: int = 2) -> ChdbBackend:
    backend = ChdbBackend(tmp_path / "data", "db", insert_connections=connections)
    for statement in render_schema("db", Features.probe(backend)):
        backend.execute(statement)
    backend.execute("SYSTEM STOP MERGES db.samples")  # parts stay as inserted
    return backend


def _rows(n: int, t0: int = T0) -> pa.Table:
    """``n`` samples of 1,000 series in the table's key order, values 0 … n-1."""
    fp = np.repeat(np.arange(1_000, dtype=np.uint64), -(-n // 1_000))[:n]
    ts = t0 + 10_000 * (np.arange(n) % -(-n // 1_000))
    names = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["m"]))
    values = np.arange(n, dtype=float)
    return pa.table({"metric_name": names, "fingerprint": fp, "ts_ms": ts, "value": values})


def _parts(backend: ChdbBackend) -> list[int]:
    table = backend.query(
        "SELECT rows FROM system.parts WHERE database = 'db' AND table = 'samples' AND active ORDER BY name"
    )
    return sorted(table.column(0).to_pylist())


def _count(backend: ChdbBackend, final: bool = False) -> int:
    return backend.query(f"SELECT count() FROM db.samples{' FINAL' if final else ''}").column(0)[0].as_py()


def test_a_large_insert_is_written_as_one_part_per_connection(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    try:
        n = 2 * PARALLEL_INSERT_ROWS + 1_000
        backend.insert("samples", _rows(n))
        assert _parts(backend) == [n // 2, n // 2]  # both halves, each one part
        sums = backend.query("SELECT sum(value) FROM db.samples FINAL").column(0)[0].as_py()
        assert sums == sum(range(n))  # every row, once
        backend.insert("samples", _rows(PARALLEL_INSERT_ROWS, T0 - 86_400_000))  # under twice: one part
        assert _parts(backend) == [PARALLEL_INSERT_ROWS, n // 2, n // 2]
    finally:
        backend.close()


def test_one_connection_inserts_in_one_part(tmp_path: Path) -> None:
    backend = _backend(tmp_path, connections=1)
    try:
        backend.insert("samples", _rows(3 * PARALLEL_INSERT_ROWS))
        assert _parts(backend) == [3 * PARALLEL_INSERT_ROWS]
    finally:
        backend.close()


def test_a_failed_range_fails_the_insert_and_a_retry_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(tmp_path)
    send = chdb_store._send
    failed: list[int] = []

    def second_range_fails_once(inserter, statement: str, rows: pa.Table) -> None:
        if rows.slice(0, 1).column("value")[0].as_py() > 0 and not failed:
            failed.append(rows.num_rows)
            raise RuntimeError("disk full")
        send(inserter, statement, rows)

    monkeypatch.setattr(chdb_store, "_send", second_range_fails_once)
    try:
        rows = _rows(2 * PARALLEL_INSERT_ROWS)
        with pytest.raises(RuntimeError, match="disk full"):
            backend.insert("samples", rows)
        assert failed
        assert _count(backend) == PARALLEL_INSERT_ROWS  # the other range was written
        backend.insert("samples", rows)  # the caller's retry of the whole block
        assert _count(backend, final=True) == 2 * PARALLEL_INSERT_ROWS
    finally:
        backend.close()


def test_a_query_does_not_wait_for_an_insert(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    try:
        backend.insert("samples", _rows(10))
        lock, _ = backend._connections(1)[0]
        with lock:  # an insert holds its connection
            answered = threading.Event()
            thread = threading.Thread(target=lambda: (_count(backend), answered.set()))
            thread.start()
            assert answered.wait(30)
        thread.join()
    finally:
        backend.close()
