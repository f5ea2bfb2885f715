"""Columns the schema gained after a data folder (or database) was made: added when the store opens.

Why: ``CREATE TABLE IF NOT EXISTS`` leaves a table made by an older release as it was, so a column
added to a ``.sql`` file later (the sketches' ``row_id``) would be missing there and every insert
naming it would fail — an upgraded server could not store sketches. At start the columns each table
has (``system.columns``) are compared with those its ``.sql`` file declares, and the missing ones are
added with ``ALTER TABLE … ADD COLUMN``, which chDB and ClickHouse 18.16 both run in place (rows
already stored read the column's default; nothing is rewritten).

A column whose zero would change what old rows mean gets a default for them (``UPGRADE_DEFAULTS``):
reads keep one sketch row per ``row_id`` in a window (``store.sketch_dedup``), so old rows all read
as ``row_id`` 0 would collapse into one; a hash of each row's content keeps distinct rows distinct
(and folds a row stored twice, which is what the id is for).

    added = add_missing_columns(backend, features)   # ["sketches.row_id"] on an old folder; [] after
"""

from __future__ import annotations

import re

from loguru import logger

from store.backend import Backend
from store.cluster import local_name
from store.features import Features
from store.schema import PORTABLE, TABLES, check_identifier, render_table

__all__ = ["UPGRADE_DEFAULTS", "add_missing_columns", "declared_columns"]

_COLUMN = re.compile(r"^\s+(\w+)\s+(.+?),?\s*$")
_SKETCH_CONTENT = (
    "project_id, source, fingerprint, window_start_ms, width_s, scale, count, sum, min, max, zero_count, "
    "positive_keys, positive_counts, negative_keys, negative_counts"
)
UPGRADE_DEFAULTS: dict[tuple[str, str], str] = {
    ("sketches", "row_id"): f"sipHash64({_SKETCH_CONTENT})",
}


def declared_columns(sql: str) -> dict[str, str]:
    """Column name → definition (type, codec) of a rendered ``CREATE TABLE`` statement, in order."""
    lines = sql.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("CREATE TABLE"))
    columns: dict[str, str] = {}
    for line in lines[start + 2 :]:  # after the CREATE line and its "("
        if line.startswith(")"):
            break
        match = _COLUMN.match(line)
        if match is None or match[1].startswith("--"):
            continue
        columns[match[1]] = match[2]
    return columns


def _existing(backend: Backend, database: str, table: str) -> set[str]:
    rows = backend.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        {"db": database, "t": table},
    ).to_pylist()
    return {row["name"] for row in rows}


def _add(
    backend: Backend, database: str, table: str, cluster: str | None, name: str, definition: str
) -> None:
    on_cluster = f" ON CLUSTER {check_identifier('cluster', cluster)}" if cluster else ""
    try:
        backend.execute(f"ALTER TABLE {database}.{table}{on_cluster} ADD COLUMN {name} {definition}")
    except Exception:
        if name not in _existing(backend, database, table):
            raise
        # another process starting on the same store added it first


def add_missing_columns(backend: Backend, features: Features = PORTABLE) -> list[str]:
    """Add the columns the schema declares and the tables lack; ``table.column`` of each added.
    Tables not there yet are left alone (the schema's ``CREATE`` makes them whole). In cluster mode
    the local and the Distributed table of each get the column on every node."""
    database = check_identifier("database", backend.database)
    cluster = getattr(backend, "cluster", None)
    added = []
    for table in TABLES:
        declared = declared_columns(render_table(table, database, features))
        names = [local_name(table), table] if cluster else [table]
        for name in names:
            existing = _existing(backend, database, name)
            if not existing:
                continue
            for column, definition in declared.items():
                if column in existing:
                    continue
                default = UPGRADE_DEFAULTS.get((table, column))
                full = f"{definition} DEFAULT {default}" if default else definition
                _add(backend, database, name, cluster, column, full)
                added.append(f"{name}.{column}")
                logger.info(
                    "store: added column {}.{} {} (table made by an older release)", name, column, full
                )
    return added
