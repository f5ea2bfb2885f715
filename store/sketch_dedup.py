"""Every read of the ``sketches`` table sees each shipped row once, however often it was inserted.

Rows of one window are summed (``sumMap``), so a row stored twice (a sidecar's retry whose answer
was lost, a buffer replayed after a restart) would count its values twice. Each row carries the
``row_id`` it was given when first buffered (``collector.window.new_row_id``), and every read goes
through :func:`sketch_rows_sql`, which keeps one row per (project_id, fingerprint, window_start_ms,
row_id) with ``LIMIT 1 BY`` — on chDB and on ClickHouse 18.16 alike. A ReplacingMergeTree would
not do: its merges are eventual, so a read between two inserts and the merge would still count both.
``LIMIT 1 BY`` over the filtered rows was the cheapest of the read-time collapses measured
(docs/sketches.md, "Exactly once"). The key holds ``project_id`` so that no caller can make another
project's row disappear by sending its id.
"""

from __future__ import annotations

DEDUP_KEY = "project_id, fingerprint, window_start_ms, row_id"


def sketch_rows_sql(columns: str, table: str, where: str) -> str:
    """``SELECT columns FROM table WHERE where``, each row id once (``table``: database-qualified)."""
    return f"SELECT {columns} FROM {table} WHERE {where} LIMIT 1 BY {DEDUP_KEY}"
