"""Embedded ClickHouse through chDB: one process owns the data folder, nothing to install."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
from chdb import session as chdb_session
from loguru import logger

from store.schema import TABLES

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


class ChdbBackend:
    """chDB session on a data folder. ``ChdbBackend("./data", "infersight")``.

    chDB runs queries in-process and a session is not safe to use from several threads at once,
    so every call holds one lock; callers on an event loop run these calls in a worker thread.
    """

    def __init__(self, path: str | Path, database: str = "infersight") -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.database = database
        self._lock = threading.Lock()
        self._session = chdb_session.Session(str(self.path))
        logger.info("chDB store at {} (database {})", self.path, database)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._session.query(sql, "CSV", params=encode_params(params))

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        with self._lock:
            result = self._session.query(sql, "ArrowTable", params=encode_params(params))
        return result

    def insert(self, table: str, rows: pa.Table) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        # chDB's Python() table function reads the local variable named in the SQL text.
        arrow_rows = rows  # noqa: F841 - referenced by name inside the SQL below
        columns = ", ".join(rows.column_names)
        with self._lock:
            self._session.query(
                f"INSERT INTO {self.database}.{table} ({columns}) SELECT {columns} FROM Python(arrow_rows)"
            )

    def close(self) -> None:
        with self._lock:
            self._session.close()
