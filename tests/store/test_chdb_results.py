"""A chDB result stays valid after later queries.

With ``output_format_arrow_compression_method = 'none'`` chDB hands back Arrow buffers that are views
into its own result memory, which the next query reuses: a table read after it held the next
result's numbers. The backend must only return tables that own their memory.
"""

from __future__ import annotations

from pathlib import Path

from store.chdb import ChdbBackend


def test_a_result_is_unchanged_by_the_next_query(tmp_path: Path) -> None:
    backend = ChdbBackend(tmp_path / "chdb", "results")
    backend.execute("CREATE DATABASE IF NOT EXISTS results")
    for table in ("full", "empty"):
        backend.execute(f"CREATE TABLE results.{table} (x Int64) ENGINE = MergeTree ORDER BY x")
    backend.execute("INSERT INTO results.full SELECT number + 1000 FROM numbers(200000)")
    full, empty = (
        backend.query(f"SELECT count() AS n, min(x) AS t FROM results.{t}") for t in ("full", "empty")
    )
    assert full.to_pylist() == [{"n": 200_000, "t": 1000}]
    assert empty.to_pylist() == [{"n": 0, "t": 0}]
