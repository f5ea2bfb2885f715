"""Inserts over connections of their own (``store.parallel_inserts``), on chDB and on the 18.16 server:
a large insert becomes one part per connection, a failed range fails the insert and its retry
duplicates nothing, and a query does not wait for an insert."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from store.open import Store, chdb_path, open_store
from store.parallel_inserts import PARALLEL_INSERT_ROWS
from tests.store.clickhouse_server import ClickHouseServer

T0 = 1_700_000_000_000
_databases = itertools.count()


def _rows(n: int, t0: int = T0) -> pa.Table:
    """``n`` samples of 1,000 series in the table's key order, values 0 … n-1."""
    fp = np.repeat(np.arange(1_000, dtype=np.uint64), -(-n // 1_000))[:n]
    ts = t0 + 10_000 * (np.arange(n) % -(-n // 1_000))
    names = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["m"]))
    values = np.arange(n, dtype=float)
    return pa.table({"metric_name": names, "fingerprint": fp, "ts_ms": ts, "value": values})


def _stop_merges(store: Store) -> None:
    store.backend.execute(f"SYSTEM STOP MERGES {store.backend.database}.samples")  # parts stay as inserted


def _parts(store: Store) -> list[int]:
    table = store.backend.query(
        "SELECT rows FROM system.parts WHERE database = {db:String} AND table = 'samples' AND active",
        {"db": store.backend.database},
    )
    return sorted(table.column(0).to_pylist())


def _scalar(store: Store, sql: str) -> float:
    return store.backend.query(sql.format(db=store.backend.database)).column(0)[0].as_py()


def _opened(request: pytest.FixtureRequest, tmp_path: Path, options: str) -> Iterator[Store]:
    """A fresh store on the fixture's backend, its URL ending in ``options``."""
    if request.param == "chdb":
        opened = open_store(f"chdb://{tmp_path / 'data'}{options}")
    else:
        server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
        opened = open_store(server.dsn(f"parallel_{next(_databases)}") + options)
    yield opened
    if request.param == "clickhouse":
        opened.backend.execute(f"DROP DATABASE IF EXISTS {opened.backend.database}")
    opened.close()


@pytest.fixture(params=["chdb", "clickhouse"])
def two_connections(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from _opened(request, tmp_path, "?insert_connections=2")


@pytest.fixture(params=["chdb", "clickhouse"])
def one_connection(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from _opened(request, tmp_path, "?insert_connections=1")


def test_a_large_insert_is_one_part_per_connection(two_connections: Store) -> None:
    store = two_connections
    _stop_merges(store)
    n = 2 * PARALLEL_INSERT_ROWS + 1_000
    store.backend.insert("samples", _rows(n))
    assert _parts(store) == [n // 2, n // 2]  # both halves, each a part of its own
    assert _scalar(store, "SELECT sum(value) FROM {db}.samples FINAL") == sum(range(n))  # each row once
    store.backend.insert("samples", _rows(PARALLEL_INSERT_ROWS, T0 - 86_400_000))  # under twice: one part
    assert _parts(store) == [PARALLEL_INSERT_ROWS, n // 2, n // 2]


def test_one_insert_connection_writes_one_part(one_connection: Store) -> None:
    _stop_merges(one_connection)
    one_connection.backend.insert("samples", _rows(3 * PARALLEL_INSERT_ROWS))
    assert _parts(one_connection) == [3 * PARALLEL_INSERT_ROWS]


def test_a_failed_range_fails_the_insert_and_its_retry_duplicates_nothing(
    two_connections: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = two_connections
    inserts = store.backend.inserts  # type: ignore[attr-defined]
    insert = inserts.insert
    failed: list[int] = []

    def second_range_fails_once(rows: pa.Table, send: Callable[[object, pa.Table], None]) -> None:
        def failing(connection: object, part: pa.Table) -> None:
            if part.column("value")[0].as_py() > 0 and not failed:
                failed.append(part.num_rows)
                raise RuntimeError("disk full")
            send(connection, part)

        insert(rows, failing)

    monkeypatch.setattr(inserts, "insert", second_range_fails_once)
    rows = _rows(2 * PARALLEL_INSERT_ROWS)
    with pytest.raises(RuntimeError, match="disk full"):
        store.backend.insert("samples", rows)
    assert failed == [PARALLEL_INSERT_ROWS]
    assert _scalar(store, "SELECT count() FROM {db}.samples") == PARALLEL_INSERT_ROWS  # the other range
    store.backend.insert("samples", rows)  # the caller's retry of the whole block
    assert _scalar(store, "SELECT count() FROM {db}.samples FINAL") == 2 * PARALLEL_INSERT_ROWS


def test_a_query_does_not_wait_for_an_insert(store: Store) -> None:
    store.backend.insert("samples", _rows(10))
    lock, _ = store.backend.inserts.connection_list(1)[0]  # type: ignore[attr-defined]
    answered = threading.Event()

    def count() -> None:
        _scalar(store, "SELECT count() FROM {db}.samples")
        answered.set()

    with lock:  # as while an insert runs on that connection
        thread = threading.Thread(target=count)
        thread.start()
        assert answered.wait(30)
    thread.join()


def test_a_chdb_dsn_takes_insert_connections_and_keeps_its_path(tmp_path: Path) -> None:
    assert chdb_path(f"chdb://{tmp_path}/data?insert_connections=2") == f"{tmp_path}/data"
    assert chdb_path("chdb://./rel?insert_connections=2") == "./rel"
    opened = open_store(f"chdb://{tmp_path / 'data'}?insert_connections=3")
    try:
        assert opened.backend.inserts.connections == 3  # type: ignore[attr-defined]
        assert [p.name for p in tmp_path.iterdir()] == ["data"]
    finally:
        opened.close()
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    try:
        assert opened.backend.inserts.connections == 1  # type: ignore[attr-defined]  # chDB's default
    finally:
        opened.close()


def test_defaults_one_insert_connection_on_chdb_two_on_a_server(store: Store) -> None:
    expected = 2 if store.backend.__class__.__name__ == "NativeBackend" else 1
    assert store.backend.inserts.connections == expected  # type: ignore[attr-defined]
