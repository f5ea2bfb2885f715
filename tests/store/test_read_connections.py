"""Reads over connections of their own: concurrent reads run at once, never two on one connection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from store.chdb import ChdbBackend
from store.read_connections import ReadConnections


def test_two_reads_run_at_once_on_different_connections() -> None:
    opened: list[int] = []
    reads = ReadConnections(lambda: opened.append(len(opened)) or len(opened), size=2)
    both_inside = threading.Barrier(2, timeout=30)  # breaks if the second read waits for the first

    def read(_: int) -> int:
        return reads.run(lambda connection: (both_inside.wait(), connection)[1])

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(read, range(2))) == [1, 2]
    assert len(opened) == 2


def test_no_more_connections_than_the_size_and_none_shared() -> None:
    reads = ReadConnections(object, size=2)
    in_use: set[int] = set()
    lock = threading.Lock()
    clash: list[int] = []

    def use(connection: object) -> None:
        with lock:
            if id(connection) in in_use:
                clash.append(id(connection))
            in_use.add(id(connection))
        with lock:
            in_use.discard(id(connection))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: reads.run(use), range(400)))
    assert not clash
    closed: list[object] = []
    reads.close(closed.append)
    assert 1 <= len(closed) <= 2


def test_chdb_reads_see_what_was_written_and_close(tmp_path: Path) -> None:
    backend = ChdbBackend(tmp_path / "chdb", "db")
    try:
        backend.execute("CREATE DATABASE IF NOT EXISTS db")
        backend.execute("CREATE TABLE db.t (x Int64) ENGINE = MergeTree ORDER BY x")
        backend.execute("INSERT INTO db.t VALUES (1), (2)")
        with ThreadPoolExecutor(4) as pool:
            sums = list(
                pool.map(
                    lambda _: backend.query("SELECT sum(x) AS s FROM db.t").column(0)[0].as_py(), range(20)
                )
            )
        assert sums == [3] * 20
    finally:
        backend.close()
