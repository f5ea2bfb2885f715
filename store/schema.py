"""Renders the schema's ``.sql`` files for a database."""

from __future__ import annotations

import re
from pathlib import Path

TABLES = ("series", "samples", "audit_traces", "audit_anchors")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def render_schema(database: str) -> list[str]:
    """DDL statements creating the database and its tables, in order."""
    if not _IDENT.match(database):
        raise ValueError(f"database name must be an identifier, got {database!r}")
    folder = Path(__file__).parent / "schema"
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}"]
    for table in TABLES:
        statements.append((folder / f"{table}.sql").read_text().replace("{db}", database))
    return statements
