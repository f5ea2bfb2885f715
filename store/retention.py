"""Retention by dropping whole partitions: ``ALTER TABLE … DROP PARTITION``, which every version has.

No TTL (18.16 lacks it, and a TTL baked into DDL would not follow a configuration change). A
partition goes only when the last day it can hold is older than the kind's retention: daily
partitions (samples, sketches) day by day, the monthly ``series`` partition once its whole month is
out. ``Retention(metrics_days=15).enforce(backend, now_ms)`` → the partitions dropped.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from loguru import logger

from store.backend import Backend
from store.schema import TABLES

_DAY_MS = 86_400_000
# Kinds of data and their tables; more kinds (events, audit) keep their own rules in their modules.
KIND_TABLES: dict[str, tuple[str, ...]] = {
    "metrics": (
        "samples",
        "series",
        "sketches",
        "rollups",
        "rollup_dirty",
        "sketch_rollups",
        "metadata",
        "exemplars",
    )
}
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_YYYYMMDD = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_YYYYMM = re.compile(r"^(\d{4})(\d{2})$")


def partition_last_day(partition: str) -> tuple[dt.date, str] | None:
    """The last day a partition can hold and the literal naming it in ``DROP PARTITION``.

    None for a partition key this module does not know (such a partition is never dropped).
    """
    if m := _DATE.match(partition):
        return dt.date(int(m[1]), int(m[2]), int(m[3])), f"'{partition}'"
    if m := _YYYYMMDD.match(partition):
        return dt.date(int(m[1]), int(m[2]), int(m[3])), partition
    if m := _YYYYMM.match(partition):
        year, month = int(m[1]), int(m[2])
        return dt.date(year, month, calendar.monthrange(year, month)[1]), partition
    return None


@dataclass(frozen=True, slots=True)
class Retention:
    """Days of data kept per kind; ``metrics_days`` defaults to the guide's 15-day views."""

    metrics_days: int = 15

    def validate(self) -> None:
        if self.metrics_days < 1:
            raise ValueError("store.retention.metrics_days must be ≥ 1")

    def cut_day(self, kind: str, now_ms: int) -> dt.date:
        """Partitions whose last day is before this day are dropped."""
        days = {"metrics": self.metrics_days}[kind]
        today = dt.date(1970, 1, 1) + dt.timedelta(days=now_ms // _DAY_MS)
        return today - dt.timedelta(days=days - 1)

    def enforce(self, backend: Backend, now_ms: int, cluster: str | None = None) -> list[str]:
        """Drop expired partitions of every kind; returns ``table/partition`` for each dropped."""
        dropped: list[str] = []
        for kind, tables in KIND_TABLES.items():
            cut = self.cut_day(kind, now_ms)
            for table in tables:
                if table in TABLES:
                    dropped.extend(_drop_before(backend, table, cut, cluster))
                recent = getattr(backend, "recent", None)
                if table == "samples" and recent is not None:
                    recent.forget_before((cut - dt.date(1970, 1, 1)).days * 86_400_000)
        return dropped


def _drop_before(backend: Backend, table: str, cut: dt.date, cluster: str | None) -> list[str]:
    stored = f"{table}_local" if cluster else table
    # On a cluster every node's parts: a partition may exist on one shard only.
    parts_table = f"cluster('{cluster}', system, parts)" if cluster else "system.parts"
    parts = backend.query(
        f"SELECT DISTINCT partition FROM {parts_table} "
        "WHERE database = {db:String} AND table = {table:String} AND active",
        {"db": backend.database, "table": stored},
    )
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    dropped = []
    for partition in sorted(parts.column(0).to_pylist()):
        known = partition_last_day(partition)
        if known is None or known[0] >= cut:
            continue
        # The literal is rebuilt from digits matched above, never taken from input as text.
        backend.execute(f"ALTER TABLE {backend.database}.{stored}{on_cluster} DROP PARTITION {known[1]}")
        dropped.append(f"{table}/{partition}")
        logger.info("retention: dropped partition {} of {}.{}", partition, backend.database, stored)
    return dropped
