"""What a chDB store's one writer keeps in memory about its tables, kept exactly as current as they.

Used by ``store.series_index`` (every series) and ``store.sketch_presence`` (which metrics have
sketch windows when). Both are a value derived from a table: read whole, then fed the rows of
every insert the backend completes; any other statement (DDL, dropped partitions, mutations) may
change the table in ways rows cannot tell, so it marks the value stale and the next use reads the
table again. Inserts that complete while a read is under way are fed to what it read; a statement
during the read discards it. One thread reads at a time: the others meanwhile get None, and so do
callers of a value that is stale, failed to read, or was dropped (``feed`` said it grew too large).
None always means "ask SQL".

Only where this process is the store's one writer (chDB): a ClickHouse server may take rows from
other servers, which this memory would not see.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import pyarrow as pa
from loguru import logger

T = TypeVar("T")


class TableMirror(Generic[T]):
    """``read(backend)`` makes the value (None: none to hold); ``feed(value, rows)`` adds one
    completed insert's rows to it (under ``lock``) and returns False to drop it. ``current()`` reads
    the table again where needed; ``value`` as it is, for use while holding ``lock``."""

    def __init__(
        self, name: str, read: Callable[[Any], T | None], feed: Callable[[T, pa.Table], bool]
    ) -> None:
        self.name = name
        self.lock = threading.Lock()
        self._read = read
        self._feed = feed
        self._value: T | None = None  # None: not read, stale, failed or dropped
        self._stale = True
        self._loading = False
        self._pending: list[pa.Table] = []  # inserts that completed while a read was under way
        self._reload_lock = threading.Lock()
        self._backend: Any = None

    def load(self, backend: Any) -> None:
        """Read the table now (the store opening); from then on the value follows it."""
        self._backend = backend
        with self._reload_lock:
            self._load(backend)

    def _load(self, backend: Any) -> None:
        with self.lock:
            self._loading, self._pending, self._stale = True, [], False
        value = None
        try:
            value = self._read(backend)
        finally:
            with self.lock:
                self._loading = False
                pending, self._pending = self._pending, []
                if value is not None and not self._stale:
                    for rows in pending:
                        if not self._feed(value, rows):
                            value = None
                            break
                else:
                    value = None
                self._value = value

    def add(self, rows: pa.Table) -> None:
        """Rows the backend has just stored (not those of a failed insert)."""
        with self.lock:
            if self._loading:
                self._pending.append(rows)
            if self._value is not None and not self._feed(self._value, rows):
                self._value = None

    def mark_stale(self) -> None:
        """The table may have changed in ways its rows do not tell (a statement ran): read it again."""
        with self.lock:
            self._stale = True
            self._value = None

    @property
    def value(self) -> T | None:
        """The value as it is, not read again (hold ``lock`` while using it)."""
        return self._value

    def current(self, backend: Any = None) -> T | None:
        """The value, read first if it is stale (``backend``: where, if never loaded); the caller
        holds no lock."""
        if backend is not None and self._backend is None:
            self._backend = backend
        if self._stale and self._backend is not None and not self._loading:
            try:
                with self._reload_lock:
                    if self._stale:  # not already read again by the thread this one waited for
                        self._load(self._backend)
            except Exception as err:  # the store is closing, or a read failed: SQL answers instead
                logger.warning("{}: reading the table again failed ({}); look-ups use SQL", self.name, err)
                return None
        return self._value
