"""The one interface every ClickHouse backend offers to the store's reads and writes."""

from __future__ import annotations

from typing import Any, Protocol

import pyarrow as pa


class StoreUnavailableError(RuntimeError):
    """The store cannot be reached now; the caller may retry later (the write is not lost)."""


class Backend(Protocol):
    """A ClickHouse connection: parameterised queries in, Arrow tables out."""

    database: str

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER)."""
        ...

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run a SELECT with bound parameters (``{name:Type}`` placeholders)."""
        ...

    def insert(self, table: str, rows: pa.Table) -> None:
        """Append rows whose columns are named as the table's."""
        ...

    def close(self) -> None: ...
