"""A ClickHouse server (or cluster) over the native protocol, through ``clickhouse-driver``.

``NativeBackend("clickhouse://127.0.0.1:9000/infersight?compression=lz4")``; URL options: ``compression``
(``lz4`` default, ``none``), ``cluster`` (cluster DDL, ``store.cluster``), ``alt_hosts`` (failover,
``host2:9000,host3:9000``), ``timeout_s``, ``insert_connections`` (inserts go over connections
of their own, and a large one is cut into this many ranges sent at once, ``store.parallel_inserts``;
2 by default: the server does its part in its own process while the client serialises the next
range). Queries take the same
``{name:Type}`` placeholders and params dict as chDB's; here they become the driver's ``%(name)s``,
which it fills client-side with escaped literals (strings quoted, backslashes and quotes escaped,
lists as array literals), so a value can never change the statement.

Inserts of numbers and strings only (``samples``, ``rollup_state``, …) go through the driver's numpy
columns (``use_numpy``): each numeric column is written with one ``tobytes``, strings as their UTF-8
bytes (``strings_as_bytes``, no per-value encode), dictionary-encoded names converted once per
distinct value. A table with dates, lists or nulls (``series``) goes as Python lists, value by value.
Into the 18.16 server (2026-12-06, 2 shared cores, 3 runs each) that takes the client's CPU per
insert from 3.0 to 1.4 ms at 100k rows (insert alone 1.9-2.2 M → 2.9-3.1 M rows/s) and from 3.8 to
2.3 ms at 10k; ``SampleWriter.write`` went from 1.36-1.46 M to 1.75-1.81 M samples/s at 100k and from
0.96-1.04 M to 1.10-1.27 M at 10k. At 1k rows an insert's fixed costs (driver round trips, about
1 ms) and the server's new part (5-10 ms) dominate: no change there.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pyarrow as pa
from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors
from loguru import logger

from store.backend import StoreUnavailableError
from store.parallel_inserts import ParallelInserts

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([^{}]+)\}")
_IN_ARRAY = re.compile(r"\bIN\s+\{([A-Za-z_][A-Za-z0-9_]*):Array\(", re.IGNORECASE)
_TRAILING_SETTINGS = re.compile(r"\s+SETTINGS\s+((?:\w+\s*=\s*[\w.']+\s*,?\s*)+)$", re.IGNORECASE)
_SETTING = re.compile(r"(\w+)\s*=\s*([\w.']+)")
# Server-side error codes that mean "not now" rather than "never": too many parts, memory, readonly
# replica, Keeper session, table is shutting down.
_RETRYABLE_CODES = {202, 209, 210, 241, 242, 252, 425, 999}
_ARROW_TYPES: dict[str, pa.DataType] = {
    "String": pa.string(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Date": pa.date32(),
}
# Strings go as their UTF-8 bytes (Arrow's own), so the driver does not encode each value again.
_NUMPY_INSERT = {"use_numpy": True, "strings_as_bytes": True}
_CLUSTER_INSERT = {"insert_distributed_sync": 1}
# A subquery over a Distributed table inside a query over one (``fingerprint IN (SELECT … FROM
# series …)``) reads each shard's local table: series, samples, sketches and rollups are all
# sharded by fingerprint, so a shard's samples only ever need that shard's series.
#
# Reads and inserts take a shard's first live replica (``load_balancing = in_order``), so a read
# after a write sees it: with the default (random) a read may go to the replica the rows have not
# reached yet, and the rollup job would fold an incomplete window. A replica that falls behind is
# skipped by the server (``max_replica_delay_for_distributed_queries``).
_CLUSTER_READS = {"distributed_product_mode": "local", "load_balancing": "in_order"}
# The driver's numpy columns import pandas (installed with chDB); without it every insert takes lists.
_NUMPY_COLUMNS = importlib.util.find_spec("pandas") is not None
_NETWORK_ERRORS = (ch_errors.NetworkError, ch_errors.SocketTimeoutError, EOFError, OSError)


def to_driver_sql(sql: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``{name:Type}`` placeholders → ``%(name)s``; a literal ``%`` is doubled for the driver.

    ``x IN {list:Array(T)}`` gets the list as a tuple, ``(a, b)``: ClickHouse 18.16 refuses an array
    literal on the right of IN.
    """
    out = dict(params)
    for name in _IN_ARRAY.findall(sql):
        out[name] = tuple(out[name])
    return _PLACEHOLDER.sub(lambda m: f"%({m[1]})s", sql.replace("%", "%%")), out


def split_settings(sql: str) -> tuple[str, dict[str, Any]]:
    """A trailing ``SETTINGS a = 1, b = 'x'`` moved into the driver's settings (works on 18.16)."""
    match = _TRAILING_SETTINGS.search(sql)
    if not match:
        return sql, {}
    settings: dict[str, Any] = {}
    for key, raw in _SETTING.findall(match[1]):
        settings[key] = raw.strip("'") if raw.startswith("'") else _number(raw)
    return sql[: match.start()], settings


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def arrow_type(ch_type: str) -> pa.DataType | None:
    """The Arrow type for a ClickHouse column type, or None to let Arrow infer it."""
    inner = re.fullmatch(r"(?:LowCardinality|Nullable)\((.+)\)", ch_type)
    if inner:
        return arrow_type(inner[1])
    array = re.fullmatch(r"Array\((.+)\)", ch_type)
    if array:
        element = arrow_type(array[1])
        return pa.list_(element) if element is not None else None
    return _ARROW_TYPES.get(ch_type)


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """A column as the Python list the driver serialises; numbers and dictionary-encoded strings
    without going through one Arrow scalar per value."""
    array = column.combine_chunks()
    if array.null_count == 0:
        if pa.types.is_dictionary(array.type):
            values = array.dictionary.to_pylist()
            return list(map(values.__getitem__, array.indices.to_numpy().tolist()))
        if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
            return array.to_numpy().tolist()
    return array.to_pylist()


def _numpy_values(column: pa.ChunkedArray) -> np.ndarray | None:
    """A column as the numpy array the driver's numpy columns take (``use_numpy``): numbers as they
    are (written with one ``tobytes``), strings as an object array of their UTF-8 bytes (dictionary
    values converted once, then gathered). None where that path cannot take it (nulls, dates,
    lists): the whole insert then goes as Python lists."""
    array = column.combine_chunks()
    if array.null_count:
        return None
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return array.to_numpy()
    if pa.types.is_dictionary(kind):
        values = _bytes_values(array.dictionary)
        return None if values is None else values[array.indices.to_numpy()]
    return _bytes_values(array)


def _bytes_values(array: pa.Array) -> np.ndarray | None:
    """Strings without nulls as an object array of bytes, or None."""
    if array.null_count:
        return None
    if pa.types.is_string(array.type):
        return array.cast(pa.binary()).to_numpy(zero_copy_only=False)
    if pa.types.is_large_string(array.type):
        return array.cast(pa.large_binary()).to_numpy(zero_copy_only=False)
    return None


class NativeBackend:
    """One native-protocol connection, used by one thread at a time (the driver's client is not shared)."""

    def __init__(self, dsn: str, database: str | None = None, connect_timeout_s: float = 5.0) -> None:
        url = urlparse(dsn)
        if url.scheme != "clickhouse":
            raise ValueError(f"store.dsn: expected clickhouse://host:port/database, got {dsn!r}")
        options = {key: values[-1] for key, values in parse_qs(url.query).items()}
        self.database = database or url.path.strip("/") or "infersight"
        self.cluster: str | None = options.get("cluster") or None
        self.address = f"{url.hostname or '127.0.0.1'}:{url.port or 9000}"
        self._lock = threading.Lock()
        compression = options.get("compression", "lz4")
        client_options = {
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 9000,
            "user": unquote(url.username or "default"),
            "password": unquote(url.password or ""),
            "compression": False if compression == "none" else compression,
            "connect_timeout": connect_timeout_s,
            "send_receive_timeout": float(options.get("timeout_s", 300)),
            "settings": {"strings_as_bytes": False, **(_CLUSTER_READS if self.cluster else {})},
            "alt_hosts": options.get("alt_hosts"),
        }
        self._client = Client(**client_options)
        # Inserts on connections of their own, a large one cut into ranges sent at once.
        self.inserts: ParallelInserts[Client] = ParallelInserts(
            lambda: Client(**client_options), int(options.get("insert_connections", 2))
        )
        logger.info("ClickHouse server store at {} (database {})", self.address, self.database)

    def _statement(self, sql: str, params: dict[str, Any] | None, **kwargs: Any) -> Any:
        body, settings = split_settings(sql)
        if not params:
            return self._run(body, None, settings, **kwargs)
        text, values = to_driver_sql(body, params)
        return self._run(text, values, settings, **kwargs)

    def _run(self, text: str, data: Any, settings: dict[str, Any], **kwargs: Any) -> Any:
        with self._lock:
            return self._run_on(self._client, text, data, settings, **kwargs)

    def _run_on(self, client: Client, text: str, data: Any, settings: dict[str, Any], **kwargs: Any) -> Any:
        try:
            return client.execute(text, data, settings=settings or None, **kwargs)
        except _NETWORK_ERRORS as err:
            client.disconnect()
            raise StoreUnavailableError(f"ClickHouse at {self.address}: {err}") from err
        except ch_errors.ServerException as err:
            if err.code == 159:  # TIMEOUT_EXCEEDED: the query side reports Prometheus' timeout
                raise TimeoutError(f"TIMEOUT_EXCEEDED: {err.message}") from err
            if err.code in _RETRYABLE_CODES:
                raise StoreUnavailableError(f"ClickHouse at {self.address}: {err.message}") from err
            raise

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._statement(sql, params)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        columns, types = self._statement(sql, params, columnar=True, with_column_types=True)
        arrays = {}
        for (name, ch_type), values in zip(types, columns or [[] for _ in types], strict=True):
            arrays[name] = pa.array(list(values), arrow_type(ch_type))
        return pa.table(arrays)

    def insert(self, table: str, rows: pa.Table) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table):
            raise ValueError(f"unknown table {table!r}")
        sql = f"INSERT INTO {self.database}.{table} ({', '.join(rows.column_names)}) VALUES"
        self.inserts.insert(rows, lambda client, part: self._insert_on(client, sql, part))

    def _insert_on(self, client: Client, sql: str, rows: pa.Table) -> None:
        # On a cluster an insert returns once every shard's replica has the rows
        # (``insert_distributed_sync``), not once they wait in this node's queue to be sent on: an
        # acknowledged write must not live only on the node that took it.
        extra = _CLUSTER_INSERT if self.cluster else {}
        if _NUMPY_COLUMNS:
            arrays = [_numpy_values(rows.column(name)) for name in rows.column_names]
            if all(array is not None for array in arrays):
                self._run_on(client, sql, arrays, {**_NUMPY_INSERT, **extra}, columnar=True)
                return
        columns = [_python_values(rows.column(name)) for name in rows.column_names]
        self._run_on(client, sql, columns, extra, columnar=True)

    def close(self) -> None:
        self.inserts.close(lambda client: client.disconnect())
        with self._lock:
            self._client.disconnect()
