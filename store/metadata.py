"""Metric metadata in ClickHouse: the newest TYPE/HELP/UNIT per project, target and metric.

``/api/v1/metadata`` answers as Prometheus does: per metric, every distinct (type, help, unit)
the targets expose. Rows are keyed by project, target (service, instance, source) and metric; a
resend of the same record changes nothing, a changed HELP replaces the old one for that target.
A caller confined to a project reads only that project's rows.

Reads are bounded: at most ``MAX_READ_ROWS`` distinct entries, so a project that sent a million
metric names cannot make one request build a million-entry answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from model.metadata import FamilyMetadata, MetadataRecord
from store.backend import Backend

_DAY_MS = 86_400_000
MAX_READ_ROWS = 200_000
_STRING_COLUMNS = ("project_id", "service_id", "instance_name", "source", "metric", "type", "help", "unit")


class MetadataStore:
    """``MetadataStore(backend).write(records)``; ``read(project, metric)``."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._db = backend.database

    def write(self, records: Sequence[MetadataRecord]) -> int:
        """Store ``records`` (each validated first: ``MetadataError`` refuses the whole batch)."""
        for record in records:
            record.validate()
        if not records:
            return 0
        columns: dict[str, Any] = {
            "day": pa.array([r.ts_ms // _DAY_MS for r in records], pa.int32()).cast(pa.date32()),
            "updated_ms": pa.array([r.ts_ms for r in records], pa.int64()),
        }
        for name in _STRING_COLUMNS:
            if name in ("metric", "type", "help", "unit"):
                values = [getattr(r.family, name) for r in records]
            else:
                values = [getattr(r, name) for r in records]
            columns[name] = pa.array(values, pa.string())
        self._backend.insert("metadata", pa.table(columns))
        return len(records)

    def read(self, project: str | None, metric: str | None = None) -> list[FamilyMetadata]:
        """The distinct (metric, type, help, unit) of the newest row per target and metric, sorted;
        ``project`` None reads every project's."""
        where, params = [], {"cap": MAX_READ_ROWS}
        if project is not None:
            where.append("project_id = {project:String}")
            params["project"] = project
        if metric:
            where.append("metric = {metric:String}")
            params["metric"] = metric
        condition = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._backend.query(
            "SELECT metric, latest.1 AS type, latest.2 AS help, latest.3 AS unit FROM ("
            "SELECT metric, argMax(tuple(type, help, unit), updated_ms) AS latest "
            f"FROM {self._db}.metadata {condition} "
            "GROUP BY project_id, service_id, instance_name, source, metric"
            ") GROUP BY metric, type, help, unit ORDER BY metric, type, help, unit LIMIT {cap:UInt64}",
            params,
        ).to_pylist()
        return [FamilyMetadata(r["metric"], r["type"], r["help"], r["unit"]) for r in rows]
