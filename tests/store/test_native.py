"""The native backend's own behaviour: placeholder translation, settings, outages and reconnects, and
inserts that give every value back exactly."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from model.series import STALE_NAN
from store import native
from store.backend import StoreUnavailableError
from store.native import NativeBackend, arrow_type, split_settings, to_driver_sql
from store.open import open_backend, open_store
from tests.store.clickhouse_server import ClickHouseServer, require_binary

_databases = itertools.count()


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


# -- inserts: every value back exactly, on both the numpy path and the Python-list path ------------------

_NAMES = [
    "",
    "é✓ 名前",
    "a'b\\c",
    "'; DROP TABLE x; --",
    "{lv0:String}",
    "%(x)s %s %%",
    "tab\tnl\n",
    "nul\x00",
]
_FINGERPRINTS = [0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0x9E3779B97F4A7C15]
_TIMESTAMPS = [-(2**63), -1, 0, 1_764_000_000_000, 2**63 - 1]
_VALUES = [math.nan, STALE_NAN, math.inf, -math.inf, -0.0, 0.0, 5e-324, -1.7976931348623157e308, 0.1]


@pytest.fixture
def server_backend(clickhouse_server: ClickHouseServer) -> Iterator[NativeBackend]:
    database = f"ins{next(_databases)}"
    backend = NativeBackend(clickhouse_server.dsn(database))
    backend.execute(f"CREATE DATABASE {database}")
    yield backend
    backend.execute(f"DROP DATABASE IF EXISTS {database}")
    backend.close()


def _samples_table(n: int, names: pa.Array) -> pa.Table:
    at = np.arange(n)
    return pa.table(
        {
            "n": at.astype(np.uint32),
            "metric_name": names,
            "fingerprint": np.array(_FINGERPRINTS, np.uint64)[at % len(_FINGERPRINTS)],
            "ts_ms": np.array(_TIMESTAMPS, np.int64)[at % len(_TIMESTAMPS)],
            "value": np.array(_VALUES, np.float64)[at % len(_VALUES)],
        }
    )


def _bits(column: pa.ChunkedArray) -> list[int]:
    return column.to_numpy().view(np.uint64).tolist()


@pytest.mark.parametrize("name_type", ["String", "LowCardinality(String)"])
@pytest.mark.parametrize("names_as", ["dictionary", "strings", "two chunks"])
def test_insert_round_trips_every_value(server_backend: NativeBackend, name_type: str, names_as: str) -> None:
    """NaN (and the stale marker's payload), ±Inf, -0.0, denormals, uint64 fingerprints ≥ 2^63,
    int64 extremes, empty, non-ASCII and SQL-looking names, bit for bit, as a samples-shaped table
    goes (``String`` on 18.16, ``LowCardinality(String)`` on newer servers)."""
    db = server_backend.database
    server_backend.execute(
        f"CREATE TABLE {db}.t (n UInt32, metric_name {name_type}, fingerprint UInt64, ts_ms Int64, "
        "value Float64) ENGINE = MergeTree() ORDER BY n SETTINGS allow_experimental_low_cardinality_type = 1"
    )
    n = 4 * len(_FINGERPRINTS) * len(_VALUES)
    codes = (np.arange(n) * 5 + 3) % len(_NAMES)
    dictionary = pa.array([*_NAMES, "never used"], pa.string())
    if names_as == "dictionary":
        names: pa.Array | pa.ChunkedArray = pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int8()), dictionary
        )
    elif names_as == "strings":
        names = pa.array([_NAMES[c] for c in codes], pa.string())
    else:  # a dictionary per chunk, each its own order
        half = n // 2
        names = pa.chunked_array(
            [
                pa.DictionaryArray.from_arrays(pa.array(codes[:half], pa.int32()), dictionary),
                pa.DictionaryArray.from_arrays(
                    pa.array(len(_NAMES) - 1 - codes[half:], pa.int32()), pa.array(_NAMES[::-1], pa.string())
                ),
            ]
        )
    sent = _samples_table(n, names)
    server_backend.insert("t", sent)

    got = server_backend.query(f"SELECT n, metric_name, fingerprint, ts_ms, value FROM {db}.t ORDER BY n")
    assert got.column("n").to_pylist() == list(range(n))
    assert got.column("metric_name").to_pylist() == [_NAMES[c] for c in codes]
    assert got.column("fingerprint").to_pylist() == sent.column("fingerprint").to_pylist()
    assert got.column("ts_ms").to_pylist() == sent.column("ts_ms").to_pylist()
    assert _bits(got.column("value")) == _bits(sent.column("value"))
    # The server's own view, not only the driver's read-back.
    per_value = n // len(_VALUES)
    checks = server_backend.query(
        f"SELECT countIf(isNaN(value)) AS nan, countIf(value = 0 AND 1 / value < 0) AS negative_zero, "
        f"countIf(fingerprint = 18446744073709551615) AS top, countIf(ts_ms = -9223372036854775808) AS low, "
        f"countIf(metric_name = {{name:String}}) AS named, countIf(metric_name = '') AS empty FROM {db}.t",
        {"name": "'; DROP TABLE x; --"},
    ).to_pylist()[0]
    assert checks == {
        "nan": 2 * per_value,
        "negative_zero": per_value,
        "top": n // len(_FINGERPRINTS),
        "low": sum(1 for i in range(n) if i % len(_TIMESTAMPS) == 0),
        "named": int((codes == _NAMES.index("'; DROP TABLE x; --")).sum()),
        "empty": int((codes == 0).sum()),
    }


def test_numbers_and_strings_are_not_sent_as_python_lists(
    server_backend: NativeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The samples-shaped insert takes the numpy path (the fast one), not a list per column."""
    db = server_backend.database
    server_backend.execute(
        f"CREATE TABLE {db}.t (n UInt32, metric_name String, fingerprint UInt64, ts_ms Int64, value Float64) "
        "ENGINE = MergeTree() ORDER BY n"
    )

    def refuse(column: pa.ChunkedArray) -> list[object]:
        raise AssertionError("Python lists for a numeric/string table")

    monkeypatch.setattr(native, "_python_values", refuse)
    dictionary = pa.array(_NAMES, pa.string())
    server_backend.insert(
        "t", _samples_table(3, pa.DictionaryArray.from_arrays(pa.array([1, 0, 1]), dictionary))
    )
    assert server_backend.query(f"SELECT count() AS c FROM {db}.t").column(0).to_pylist() == [3]


def test_insert_with_dates_and_arrays_round_trips(server_backend: NativeBackend) -> None:
    """The series table's shape (Date, Array(String)) goes as Python lists; empty arrays, empty and
    odd strings, and uint64 fingerprints ≥ 2^63 come back as sent."""
    db = server_backend.database
    server_backend.execute(
        f"CREATE TABLE {db}.s (day Date, metric_name String, fingerprint UInt64, label_names Array(String), "
        "label_values Array(String)) ENGINE = MergeTree() ORDER BY (metric_name, fingerprint, day)"
    )
    sent = pa.table(
        {
            "day": pa.array([20_000, 20_001, 0, 20_002], pa.int32()).cast(pa.date32()),
            "metric_name": pa.array(["a", "b", "c", "d"], pa.string()),
            "fingerprint": pa.array([2**64 - 1, 2**63, 0, 7], pa.uint64()),
            "label_names": pa.array([[], ["job", "é"], [""], ["x", "y", "z"]], pa.list_(pa.string())),
            "label_values": pa.array(
                [[], ["'; DROP TABLE s; --", "名前"], [""], ["a\\b", "{lv0:String}", "%s"]],
                pa.list_(pa.string()),
            ),
        }
    )
    server_backend.insert("s", sent)
    got = server_backend.query(f"SELECT * FROM {db}.s ORDER BY metric_name")
    assert got.to_pylist() == sent.to_pylist()


@pytest.mark.parametrize("table", ["t", "s"])
def test_empty_insert_is_a_no_op(server_backend: NativeBackend, table: str) -> None:
    db = server_backend.database
    server_backend.execute(f"CREATE TABLE {db}.t (n UInt32, name String) ENGINE = MergeTree() ORDER BY n")
    server_backend.execute(
        f"CREATE TABLE {db}.s (n UInt32, names Array(String)) ENGINE = MergeTree() ORDER BY n"
    )
    second = pa.array([], pa.string()) if table == "t" else pa.array([], pa.list_(pa.string()))
    server_backend.insert(
        table, pa.table({"n": pa.array([], pa.uint32()), ("name" if table == "t" else "names"): second})
    )
    assert server_backend.query(f"SELECT count() AS c FROM {db}.{table}").column(0).to_pylist() == [0]
