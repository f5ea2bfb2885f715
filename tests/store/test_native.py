"""The native backend's own behaviour: placeholder translation, settings, outages and reconnects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from store.backend import StoreUnavailableError
from store.native import NativeBackend, arrow_type, split_settings, to_driver_sql
from store.open import open_backend, open_store
from tests.store.clickhouse_server import ClickHouseServer, require_binary


def test_placeholders_become_driver_params_and_percent_is_literal() -> None:
    sql, params = to_driver_sql(
        "SELECT * FROM t WHERE a = {a:String} AND b LIKE '%x' "
        "AND c IN {c:Array(UInt64)} AND has({d:Array(String)}, e)",
        {"a": "o'x", "c": [1, 2], "d": ["p"]},
    )
    assert sql == "SELECT * FROM t WHERE a = %(a)s AND b LIKE '%%x' AND c IN %(c)s AND has(%(d)s, e)"
    assert params == {"a": "o'x", "c": (1, 2), "d": ["p"]}  # IN gets a tuple: 18.16 refuses arrays there


@pytest.mark.parametrize(
    ("sql", "body", "settings"),
    [
        ("SELECT 1 SETTINGS max_execution_time = 120", "SELECT 1", {"max_execution_time": 120}),
        ("SELECT 1 SETTINGS a = 1, b = 'x', c = 0.5", "SELECT 1", {"a": 1, "b": "x", "c": 0.5}),
        ("SELECT 'SETTINGS x = 1' AS s", "SELECT 'SETTINGS x = 1' AS s", {}),
    ],
)
def test_trailing_settings_move_to_the_driver(sql: str, body: str, settings: dict[str, object]) -> None:
    assert split_settings(sql) == (body, settings)


@pytest.mark.parametrize(
    ("ch_type", "arrow"),
    [
        ("UInt64", pa.uint64()),
        ("LowCardinality(String)", pa.string()),
        ("Array(String)", pa.list_(pa.string())),
        ("Nullable(Float64)", pa.float64()),
        ("Date", pa.date32()),
        ("DateTime", None),
    ],
)
def test_arrow_types(ch_type: str, arrow: pa.DataType | None) -> None:
    assert arrow_type(ch_type) == arrow


@pytest.mark.parametrize("dsn", ["mysql://x/y", "http://127.0.0.1:8123/db", "/plain/path"])
def test_unsupported_schemes_are_refused(dsn: str) -> None:
    with pytest.raises(ValueError, match=r"store\.dsn"):
        open_backend(dsn)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ClickHouseServer]:
    require_binary()
    server = ClickHouseServer(tmp_path / "clickhouse").start()
    yield server
    server.stop()


def test_outage_raises_store_unavailable_then_reconnects(own_server: ClickHouseServer) -> None:
    store = open_store(own_server.dsn("outage"))
    try:
        own_server.kill()
        with pytest.raises(StoreUnavailableError):
            store.backend.query("SELECT 1")
        own_server.start()
        assert store.backend.query("SELECT 1 AS one").column(0).to_pylist() == [1]
    finally:
        store.close()


def test_query_timeout_is_reported_as_timeout(own_server: ClickHouseServer) -> None:
    backend = NativeBackend(own_server.dsn("default"))
    try:
        with pytest.raises(TimeoutError, match="TIMEOUT_EXCEEDED"):
            backend.query("SELECT count() FROM numbers(100000000000) SETTINGS max_execution_time = 1")
        assert backend.query("SELECT 2 AS two").column(0).to_pylist() == [2]
    finally:
        backend.close()


def test_empty_result_keeps_its_columns(own_server: ClickHouseServer) -> None:
    backend = NativeBackend(own_server.dsn("default"))
    try:
        table = backend.query("SELECT number AS n, toString(number) AS s FROM system.numbers WHERE 0 LIMIT 1")
        assert table.column_names == ["n", "s"]
        assert table.num_rows == 0
    finally:
        backend.close()
