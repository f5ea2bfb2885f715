"""Inserts over connections of their own, a large one cut into row ranges sent at once.

Why: inserts on connections of their own stop waiting for queries (and queries for inserts) on the
backend's main connection. And an INSERT into chDB or a ClickHouse server runs on one core while
its client waits: with more than one connection (``connections``) a large block is cut into ranges
sent at once, which puts idle cores to work (chDB runs statements of different connections in
parallel without the GIL; a server writes each INSERT in its own thread while the client
serialises the next range). In the remote-write server on this project's 2-core machine that
raised the 18.16 server's throughput by about a quarter (its work is in another process), but
slowed chDB's 10k-sample requests, where the request path and the load generator already hold the
other core (docs/store.md): the server backend cuts in two by default, chDB does not.

Rows are cut where they lie, so each range keeps the block's order (SampleWriter sends it in the
table's key order) and becomes a part of its own. If a range fails the insert raises and its
caller retries the whole block: ranges already written are written again, which the
ReplacingMergeTree tables collapse like any replay (docs/store.md, "No loss, no duplicates").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import pyarrow as pa

C = TypeVar("C")

# An insert of at least twice this many rows is cut into ranges of at least this many.
PARALLEL_INSERT_ROWS = 100_000


class ParallelInserts(Generic[C]):
    """``connect()`` opens one connection; ``insert(rows, send)`` calls ``send(connection, range)``
    for each range, one range per connection at a time. Thread-safe."""

    def __init__(self, connect: Callable[[], C], connections: int = 1) -> None:
        self._connect = connect
        self.connections = max(1, connections)
        self._open: list[tuple[threading.Lock, C]] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def insert(self, rows: pa.Table, send: Callable[[C, pa.Table], None]) -> None:
        parts = min(self.connections, rows.num_rows // PARALLEL_INSERT_ROWS) or 1
        held = self.connection_list(parts)
        if parts == 1:
            _locked(held[0], send, rows)
            return
        size = -(-rows.num_rows // parts)
        assert self._pool is not None
        others = [
            self._pool.submit(_locked, held[k], send, rows.slice(k * size, size)) for k in range(1, parts)
        ]
        try:
            _locked(held[0], send, rows.slice(0, size))
        finally:
            errors = [future.exception() for future in others]  # waits for every range
        for error in errors:
            if error is not None:
                raise error

    def connection_list(self, n: int) -> list[tuple[threading.Lock, C]]:
        """The first ``n`` connections with their locks, opened on first use."""
        with self._lock:
            while len(self._open) < n:
                self._open.append((threading.Lock(), self._connect()))
            if n > 1 and self._pool is None:
                self._pool = ThreadPoolExecutor(self.connections - 1, thread_name_prefix="insert")
            return self._open[:n]

    def close(self, close_one: Callable[[C], None]) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        with self._lock:
            for lock, connection in self._open:
                with lock:
                    close_one(connection)
            self._open.clear()


def _locked(held: tuple[threading.Lock, C], send: Callable[[C, pa.Table], None], rows: pa.Table) -> None:
    lock, connection = held
    with lock:
        send(connection, rows)
