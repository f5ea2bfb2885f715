"""Embedded ClickHouse through chDB: one process owns the data folder, nothing to install."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import chdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from chdb import session as chdb_session
from loguru import logger

from store.parallel_inserts import ParallelInserts
from store.read_connections import ReadConnections
from store.recent_points import RecentPoints
from store.schema import TABLES
from store.series_index import SeriesIndex
from store.sketch_presence import SketchPresence
from store.write_marks import EVERYTHING_MS, WriteMarks

# The time column of the tables whose points queries answer with (their writes are noted in
# ``point_marks``).
_POINT_TIME = {"samples": "ts_ms", "sketches": "window_start_ms"}

# SampleWriter sends each (series, timestamp) and (series, day) once per batch, samples presorted by
# the table's key: nothing for the ReplacingMergeTree to collapse while inserting, so skip that pass.
_INSERT_SETTINGS = {
    "samples": " SETTINGS optimize_on_insert = 0",
    "series": " SETTINGS optimize_on_insert = 0",
}
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "'": "\\'"})


def encode_params(params: dict[str, Any] | None) -> dict[str, str]:
    """Query-parameter values as ClickHouse reads them: text in its escaped format.

    ClickHouse parses a parameter's text (escape sequences included), so a raw backslash or tab
    would change the value; escaping keeps every value literal. Lists become array literals.
    """
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if isinstance(value, list | tuple):
            out[key] = "[" + ",".join(_element(v) for v in value) + "]"
        elif isinstance(value, str):
            out[key] = value.translate(_ESCAPES)
        else:
            out[key] = str(value)
    return out


def _element(value: object) -> str:
    return f"'{value.translate(_ESCAPES)}'" if isinstance(value, str) else str(value)


_NATIVE_NUMBERS = {
    pa.uint8(): "UInt8",
    pa.uint16(): "UInt16",
    pa.uint32(): "UInt32",
    pa.uint64(): "UInt64",
    pa.int8(): "Int8",
    pa.int16(): "Int16",
    pa.int32(): "Int32",
    pa.int64(): "Int64",
    pa.float32(): "Float32",
    pa.float64(): "Float64",
}
# LowCardinality's bulk serialisation: keys version 1 (shared dictionaries with additional keys), then
# per block flags (index width | has additional keys | needs dictionary update), as ClickHouse writes.
_LC_KEYS_VERSION = 1
_LC_FLAGS = (1 << 9) | (1 << 10)
_LC_INDEX = ((1 << 8, np.uint8, 0), (1 << 16, np.uint16, 1), (1 << 32, np.uint32, 2))


def native_block(rows: pa.Table) -> bytes | None:
    """``rows`` in ClickHouse's Native format, or None unless every column is numbers or
    dictionary-encoded strings (LowCardinality(String)) without nulls, on a little-endian host."""
    if rows.num_rows == 0 or sys.byteorder != "little":
        return None
    parts: list[bytes | memoryview] = [_varint(rows.num_columns), _varint(rows.num_rows)]
    for name, column in zip(rows.column_names, rows.columns, strict=True):
        array = column.combine_chunks()
        if array.null_count:
            return None
        number = _NATIVE_NUMBERS.get(array.type)
        if number is not None:
            parts += [_text(name), _text(number), memoryview(np.ascontiguousarray(array.to_numpy()))]
        elif pa.types.is_dictionary(array.type) and pa.types.is_string(array.type.value_type):
            keys = array.dictionary
            if keys.null_count:
                return None
            _, dtype, code = next(w for w in _LC_INDEX if len(keys) <= w[0])
            parts += [
                _text(name),
                _text("LowCardinality(String)"),
                struct.pack("<QQQ", _LC_KEYS_VERSION, _LC_FLAGS | code, len(keys)),
                *(_text(key) for key in keys.to_pylist()),
                struct.pack("<Q", rows.num_rows),
                memoryview(array.indices.to_numpy().astype(dtype)),
            ]
        else:
            return None
    return b"".join(parts)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return _varint(len(data)) + data


class StoreInUseError(RuntimeError):
    """Another process owns the chDB data folder (chDB, like ClickHouse, allows one)."""


# Folders this process has open: chDB shares one engine between sessions of a process, so a second
# backend on the same folder here is fine, and the lock below is its own.
_OPEN_HERE: Counter[str] = Counter()


def ensure_not_in_use(path: Path) -> None:
    """Raise StoreInUseError if another process holds the folder's ``status`` lock.

    ClickHouse takes an exclusive ``flock`` on ``<path>/status`` for as long as it runs; chDB's own
    refusal is a message on the process's stderr and an error that does not say why, so the lock is
    tried here first (and let go at once: chDB takes it next).
    """
    status = path / "status"
    if _OPEN_HERE[str(path.resolve())] or not status.exists():
        return
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return  # chDB will say what is wrong with the file
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StoreInUseError(
                f"data folder {path} is in use by another process (a chDB folder has one owner: stop "
                "it, or ask the running server, e.g. GET /api/v1/audit/verify)"
            ) from None
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class ChdbBackend:
    """chDB on a data folder. ``ChdbBackend("./data", "infersight")``.

    DDL goes through one session, one statement at a time; queries through ``ReadConnections`` (a
    few connections of their own, so concurrent reads run at once; each result is read out of its
    connection's buffer before the next query there may run); callers on an event loop run these
    calls in a worker thread. Inserts go through connections of their own to the same engine
    (``store.parallel_inserts``: chDB runs statements of different connections in parallel and
    without the GIL), so an insert neither waits for a query nor blocks one; with
    ``insert_connections`` above 1 a large one is cut into that many row ranges written at once.
    """

    def __init__(self, path: str | Path, database: str = "infersight", insert_connections: int = 1) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        ensure_not_in_use(self.path)
        self.database = database
        self._lock = threading.Lock()
        # Bumped after every write that can change which series exist (a ``series`` insert, any
        # statement through ``execute``: DDL, mutations, dropped partitions). One process owns a
        # chDB folder, so every such write passes here: readers may cache series look-ups under it.
        self.series_changes = 0
        # Every write of points, noted once they can be read with their oldest time: an answer
        # stays right for the steps before the oldest point written since it was computed
        # (store.write_marks). Statements go by ``series_changes``.
        self.point_marks = WriteMarks()
        # Bumped after every insert and statement, whatever it wrote: two reads that see the same
        # value read the same data (queries share results under it: query.promql.shared_results).
        self.data_version = 0
        self._changes_lock = threading.Lock()  # not the session's: an insert never waits on a query
        # This process is the folder's one writer: its newest points are kept in memory too, and
        # reads within them need no store read (store.recent_points; filled by ``open_store``).
        self.recent = RecentPoints()
        # Likewise every series, so label matchers resolve without SQL (store.series_index; loaded
        # by ``open_store``, then fed every completed ``series`` insert).
        self.series_index: SeriesIndex | None = SeriesIndex()
        # And which metrics have sketch windows when (store.sketch_presence), fed the same way.
        self.sketch_presence = SketchPresence()
        self._session = chdb_session.Session(str(self.path))
        try:
            self._session.query("SET output_format_arrow_compression_method = 'none'", "CSV")
            path_text = str(self.path)  # not self: a backend dropped without close() is still freed at once
            self.inserts: ParallelInserts[Any] = ParallelInserts(
                lambda: chdb.connect(path_text), insert_connections
            )
            self.reads: ReadConnections[Any] = ReadConnections(lambda: _read_connection(path_text))
        except BaseException:
            self._session.close()  # chDB left open at exit crashes the process
            raise
        self._key: str | None = str(self.path.resolve())
        _OPEN_HERE[self._key] += 1
        logger.info("chDB store at {} (database {})", self.path, database)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            with self._lock:
                self._session.query(sql, "CSV", params=encode_params(params))
        finally:
            self._bump_series_changes()
            self._bump_data_version()
            if self.series_index is not None:
                self.series_index.mark_stale()
            self.sketch_presence.after_statement(sql)

    def _bump_data_version(self) -> None:
        with self._changes_lock:
            self.data_version += 1

    def _bump_series_changes(self) -> None:
        with self._changes_lock:
            self.series_changes += 1

    @staticmethod
    def _oldest_point(table: str, rows: pa.Table) -> int | None:
        """The oldest point time of a write to a table of points (``EVERYTHING_MS`` when it cannot
        be told); None for other tables and empty writes."""
        column = _POINT_TIME.get(table)
        if column is None or not rows.num_rows:
            return None
        oldest = pc.min(rows.column(column)).as_py() if column in rows.column_names else None
        return EVERYTHING_MS if oldest is None else int(oldest)

    def note_points(self, oldest_ms: int) -> None:
        """Points stored earlier just became readable where reads of new times look (the recent
        points in memory): what was computed or kept from before may lack them."""
        self._bump_data_version()
        self.point_marks.note(oldest_ms)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """The result as an Arrow table that owns its memory.

        chDB's own ``"ArrowTable"`` reads the table straight out of chDB's result buffer, which the
        next query reuses: safe only while every column arrives compressed (then decompressing
        copies it), and LZ4 costs more than the read itself on long results. So the session sends
        results uncompressed (``__init__``) and they are copied here once, into Python's memory.
        """
        data = self.reads.run(lambda c: c.query(sql, "Arrow", params=encode_params(params)).bytes())
        if not data:
            return pa.table({})
        return pa.ipc.open_file(pa.py_buffer(data)).read_all()

    def insert(self, table: str, rows: pa.Table) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        columns = ", ".join(rows.column_names)
        statement = f"INSERT INTO {self.database}.{table} ({columns}){_INSERT_SETTINGS.get(table, '')}"
        try:
            if getattr(self._session, "send_insert", None) is None:  # chDB before streaming inserts
                self._insert_via_python(statement, rows)
            else:
                self.inserts.insert(rows, lambda connection, part: _send(connection, statement, part))
            if table == "series" and self.series_index is not None:
                self.series_index.add(rows)
            elif table == "sketches":
                self.sketch_presence.add(rows)
        finally:
            self._bump_data_version()
            if table == "series":
                self._bump_series_changes()
            # Done or failed (part of it may be stored): answers kept from before may lack it.
            oldest = self._oldest_point(table, rows)
            if oldest is not None:
                self.point_marks.note(oldest)

    def _insert_via_python(self, statement: str, rows: pa.Table) -> None:
        # chDB's Python() table function reads the local variable named in the SQL text.
        arrow_rows = rows  # noqa: F841 - referenced by name inside the SQL below
        columns = ", ".join(rows.column_names)
        with self._lock:
            self._session.query(f"{statement} SELECT {columns} FROM Python(arrow_rows)")

    def close(self) -> None:
        self.inserts.close(lambda connection: connection.close())
        self.reads.close(lambda connection: connection.close())
        with self._lock:
            self._session.close()
            if self._key is not None:
                _OPEN_HERE[self._key] -= 1
                self._key = None


def _read_connection(path: str) -> Any:
    """A connection for queries (``ReadConnections``), its results sent uncompressed (see ``query``)."""
    connection = chdb.connect(path)
    connection.query("SET output_format_arrow_compression_method = 'none'", "CSV")
    return connection


def _send(connection: Any, statement: str, rows: pa.Table) -> None:
    """One streaming insert over one connection: Native format where the columns allow (numbers,
    dictionary-encoded strings: what SampleWriter sends), which ClickHouse reads nearly as a copy;
    Arrow IPC for the rest."""
    data, fmt = native_block(rows), "Native"
    if data is None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            writer.write_table(rows)
        data, fmt = sink.getvalue().to_pybytes(), "ArrowStream"
    with connection.send_insert(statement, fmt) as stream:
        stream.append(data)
        stream.finish()
