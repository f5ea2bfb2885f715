"""Events in ClickHouse: append occurrences, list them folded, drop what retention ends.

Each stored occurrence has an ``event_id`` (the one it was sent with, else a new UUID), and the
folded count is the number of distinct ids: an event stored twice (a sidecar's retry whose answer was
lost, a buffer replayed after a restart) is one occurrence, even before the ReplacingMergeTree merges
the two rows away.

Retention follows the guide: pod events one hour (seven days when configured), service events one
month. Listing never shows an event past its kind's retention; whole daily partitions of a kind
are dropped once every row in them is past it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from model.events import KINDS, Event, EventObject
from store.backend import Backend
from store.cursor import decode_cursor, encode_cursor

_OBJECT_FIELDS = ("project_id", "service_id", "service_name", "group_id", "instance_name", "unit", "pod")
_GROUP = ("kind", "type", "reason", "message", *_OBJECT_FIELDS)
FILTERS = ("kind", "type", "reason", "source", *_OBJECT_FIELDS)
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of event is listed and kept, in ms (the guide's defaults)."""

    pod_ms: int = 3_600_000
    service_ms: int = 30 * _DAY_MS

    def of(self, kind: str) -> int:
        return self.pod_ms if kind == "pod" else self.service_ms


@dataclass(frozen=True, slots=True)
class EventQuery:
    from_ms: int = 0
    to_ms: int = 2**62
    filters: tuple[tuple[str, str], ...] = ()
    text: str = ""
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class FoldedEvent:
    """Identical occurrences folded: the guide's row with its Occurrences count."""

    kind: str
    type: str
    reason: str
    message: str
    obj: EventObject
    count: int
    first_ms: int
    last_ms: int
    key: int = field(default=0, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "object": {f: getattr(self.obj, f) for f in _OBJECT_FIELDS},
            "count": self.count,
            "firstTimestamp": self.first_ms,
            "lastTimestamp": self.last_ms,
        }


class EventLog:
    """``EventLog(backend).append([event])``; ``list(EventQuery(...))``; ``enforce_retention(now_ms)``."""

    def __init__(self, backend: Backend, retention: Retention | None = None) -> None:
        self._backend = backend
        self._db = backend.database
        self.retention = retention or Retention()

    def append(self, events: Sequence[Event]) -> None:
        for event in events:
            event.validate()
        if not events:
            return
        columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "day",
                "time_ms",
                "event_id",
                "kind",
                "type",
                "reason",
                "message",
                "source",
                *_OBJECT_FIELDS,
            )
        }
        for e in events:
            columns["day"].append(e.time_ms // _DAY_MS)
            columns["time_ms"].append(e.time_ms)
            columns["event_id"].append(e.event_id or str(uuid.uuid4()))
            for name in ("kind", "type", "reason", "message", "source"):
                columns[name].append(getattr(e, name))
            for name in _OBJECT_FIELDS:
                columns[name].append(getattr(e.obj, name))
        table = pa.table(
            {
                name: (
                    pa.array(values, pa.int32()).cast(pa.date32())
                    if name == "day"
                    else pa.array(values, pa.int64() if name == "time_ms" else pa.string())
                )
                for name, values in columns.items()
            }
        )
        self._backend.insert("events", table)

    def list(self, query: EventQuery, now_ms: int) -> tuple[list[FoldedEvent], str | None]:
        """Folded events newest first (by last occurrence), and the next page's cursor."""
        params: dict[str, Any] = {"t0": query.from_ms, "t1": query.to_ms, "limit": query.limit + 1}
        params.update(pod_cut=now_ms - self.retention.pod_ms, svc_cut=now_ms - self.retention.service_ms)
        where = [
            "time_ms >= {t0:Int64}",
            "time_ms <= {t1:Int64}",
            "time_ms >= if(kind = 'pod', {pod_cut:Int64}, {svc_cut:Int64})",
        ]
        for i, (name, value) in enumerate(query.filters):
            if name not in FILTERS:
                raise ValueError(f"{name}: not a filter (filters: {', '.join(FILTERS)})")
            params[f"f{i}"] = value
            where.append(f"{name} = {{f{i}:String}}")
        if query.text:
            params["q"] = query.text
            where.append(
                "(positionCaseInsensitiveUTF8(message, {q:String}) > 0 "
                "OR positionCaseInsensitiveUTF8(reason, {q:String}) > 0)"
            )
        having = ""
        if query.cursor:
            c_last, c_key = decode_cursor(query.cursor)
            params.update(cl=c_last, ck=c_key)
            having = "HAVING last_ms < {cl:Int64} OR (last_ms = {cl:Int64} AND key < {ck:UInt64})"
        group = ", ".join(_GROUP)
        rows = self._backend.query(
            f"SELECT {group}, uniqExact(event_id) AS n, min(time_ms) AS first_ms, max(time_ms) AS last_ms, "
            f"sipHash64({group}) AS key FROM {self._db}.events WHERE {' AND '.join(where)} "
            f"GROUP BY {group} {having} ORDER BY last_ms DESC, key DESC LIMIT {{limit:UInt64}}",
            params,
        ).to_pylist()
        page = [
            FoldedEvent(
                r["kind"],
                r["type"],
                r["reason"],
                r["message"],
                EventObject(**{f: r[f] for f in _OBJECT_FIELDS}),
                int(r["n"]),
                int(r["first_ms"]),
                int(r["last_ms"]),
                int(r["key"]),
            )
            for r in rows[: query.limit]
        ]
        more = len(rows) > query.limit
        return page, (encode_cursor(page[-1].last_ms, page[-1].key) if more and page else None)

    def enforce_retention(self, now_ms: int) -> list[str]:
        """Drop each daily partition whose every row is past its kind's retention; returns them.

        On a cluster the days are read through the cluster-wide table (every shard's rows) and the
        partitions dropped from every node's own table (``events_local``), as metrics retention does."""
        cluster = getattr(self._backend, "cluster", None)
        stored = "events_local" if cluster else "events"
        on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
        dropped = []
        for kind in KINDS:
            cut_day = dt.date(1970, 1, 1) + dt.timedelta(days=(now_ms - self.retention.of(kind)) // _DAY_MS)
            rows = self._backend.query(
                f"SELECT DISTINCT toYYYYMMDD(day) AS d FROM {self._db}.events "
                "WHERE kind = {kind:String} AND day < {cut:Date}",
                {"kind": kind, "cut": cut_day.isoformat()},
            ).to_pylist()
            for row in rows:
                # Partition ids come from the table itself (kind is one of two literals), never from input.
                self._backend.execute(
                    f"ALTER TABLE {self._db}.{stored}{on_cluster} DROP PARTITION ('{kind}', {int(row['d'])})"
                )
                dropped.append(f"{kind}/{row['d']}")
        return dropped
