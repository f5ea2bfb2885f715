"""A data folder made by an older release opens and keeps working: the columns its tables lack are
added at start (the sketches' ``row_id``), on chDB and ClickHouse 18.16, with the table exactly as
the old DDL made it; rows stored before the upgrade all still count, rows after it are read once."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from collector.window import SketchRow, WindowedSketches
from store.open import open_backend, open_store, prepare
from store.schema import PORTABLE
from store.schema_upgrade import add_missing_columns
from store.sketches import SketchReader, SketchWriter, to_table
from tests.store.clickhouse_server import ClickHouseServer

OLD_DDL = Path(__file__).parent / "testdata" / "sketches_before_row_id.sql"
TTFT = "infer_service_first_token_cost"
T0_S = 1_700_002_800
_databases = itertools.count()


@pytest.fixture(params=["chdb", "clickhouse"])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "chdb":
        yield f"chdb://{tmp_path / 'data'}"
        return
    server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
    database = f"upgrade{next(_databases)}"
    yield server.dsn(database)
    backend = open_backend(server.dsn(database))
    backend.execute(f"DROP DATABASE IF EXISTS {database}")
    backend.close()


def _rows(source: str, values: list[float]) -> list[SketchRow]:
    windows = WindowedSketches()
    labels = {"service_id": "svc", "group_id": "dep", "source": source, "project_id": "p"}
    windows.observe(TTFT, labels, np.array(values), T0_S)
    return windows.drain_all()


def _old_folder(dsn: str) -> None:
    """The database as an older release left it: its sketches table without row_id, with rows."""
    backend = open_backend(dsn)
    try:
        database = backend.database
        backend.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        ddl = OLD_DDL.read_text().replace("{db}", database)
        for placeholder, value in PORTABLE.column_types().items():
            ddl = ddl.replace(placeholder, value)
        backend.execute(ddl)
        # Two real rows of one window (a sidecar restarted inside it): both must count.
        for values in ([10.0, 20.0], [30.0]):
            table = to_table(_rows("pod-0", values))
            backend.insert("sketches", table.drop_columns(["row_id"]))
    finally:
        backend.close()


def _count(reader: SketchReader) -> int:
    merged = reader.merged(TTFT, {"source": "pod-0"}, T0_S * 1000, (T0_S + 60) * 1000, 60_000)
    return sum(m.count for m in merged)


def test_an_old_sketches_table_gets_row_id_and_keeps_working(dsn: str) -> None:
    _old_folder(dsn)
    store = open_store(dsn)
    try:
        backend = store.backend
        columns = backend.query(
            "SELECT name, default_expression FROM system.columns "
            "WHERE database = {db:String} AND table = 'sketches'",
            {"db": backend.database},
        ).to_pylist()
        by_name = {c["name"]: c["default_expression"] for c in columns}
        assert "row_id" in by_name
        assert by_name["row_id"].startswith("sipHash64")
        reader = SketchReader(backend)
        assert _count(reader) == 3  # both old rows: distinct content, distinct ids
        ids = backend.query(f"SELECT row_id FROM {backend.database}.sketches").column("row_id").to_pylist()
        assert len(set(ids)) == 2
        assert 0 not in ids
        new = [dataclasses.replace(row, row_id=12345) for row in _rows("pod-0", [40.0, 50.0, 60.0, 70.0])]
        writer = SketchWriter(backend)
        writer.write(new)
        writer.write(new)  # a retry whose answer was lost: read once
        assert _count(reader) == 7
        assert add_missing_columns(backend, store.features or PORTABLE) == []
        prepare(backend)  # a second start changes nothing
        assert _count(reader) == 7
    finally:
        store.close()
    store = open_store(dsn)  # and the next start opens it as it is
    try:
        assert _count(SketchReader(store.backend)) == 7
    finally:
        store.close()


def test_a_fresh_store_needs_no_upgrade(dsn: str) -> None:
    store = open_store(dsn)
    try:
        assert add_missing_columns(store.backend, store.features or PORTABLE) == []
    finally:
        store.close()
