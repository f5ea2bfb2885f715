"""Renders the schema's ``.sql`` files for a database (and, in cluster mode, see ``store.cluster``)."""

from __future__ import annotations

import re
from pathlib import Path

from store.features import Features

TABLES = (
    "series",
    "samples",
    "audit_traces",
    "audit_anchors",
    "events",
    "api_keys",
    "sketches",
    "rollups",
    "rollup_state",
    "rollup_dirty",
    "sketch_rollups",
    "metadata",
    "exemplars",
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What a server without the newer features gets: the schema as ClickHouse 18.16 runs it.
PORTABLE = Features.from_version("18.16.1")


def check_identifier(kind: str, name: str) -> str:
    """``name`` if it is a plain SQL identifier (database, cluster), else ValueError."""
    if not _IDENT.match(name):
        raise ValueError(f"{kind} name must be an identifier, got {name!r}")
    return name


def render_table(table: str, database: str, features: Features = PORTABLE) -> str:
    """The ``CREATE TABLE`` statement of one table, placeholders filled."""
    text = (Path(__file__).parent / "schema" / f"{table}.sql").read_text()
    for placeholder, value in {"{db}": database, **features.column_types()}.items():
        text = text.replace(placeholder, value)
    return text


def render_schema(database: str, features: Features = PORTABLE) -> list[str]:
    """DDL statements creating the database and its tables, in order."""
    check_identifier("database", database)
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}"]
    statements.extend(render_table(table, database, features) for table in TABLES)
    return statements
