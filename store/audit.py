"""The audit trail in ClickHouse: append (hash-chained, masked), search, verify.

One writer appends (the server process); it keeps the chain head in memory and reads it back from
the table at start. Every ``anchor_every`` records it writes an anchor row and, when configured, a
line to an anchor file kept outside the database.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from model.audit import Trace, TraceUser
from store.audit_chain import GENESIS, Tampering, content_hash, verify_rows
from store.backend import Backend
from store.cursor import decode_cursor, encode_cursor

_COLUMNS = [
    "seq",
    "day",
    "time_ms",
    "record_time_ms",
    "trace_id",
    "trace_name",
    "trace_rating",
    "trace_type",
    "service_type",
    "resource_type",
    "resource_id",
    "resource_name",
    "user_id",
    "user_name",
    "domain_id",
    "domain_name",
    "source_ip",
    "request",
    "response",
    "code",
    "message",
    "api_version",
    "project_id",
    "request_id",
    "prev_hash",
    "hash",
]
_INT_COLUMNS = {"seq", "time_ms", "record_time_ms"}
# Filters matched exactly; `q` is free text over the descriptive fields.
EXACT_FILTERS = (
    "trace_name",
    "trace_rating",
    "trace_type",
    "resource_type",
    "resource_id",
    "resource_name",
    "user_name",
    "source_ip",
    "project_id",
    "trace_id",
)
_TEXT_FIELDS = ("trace_name", "resource_name", "resource_id", "user_name", "request", "response", "message")


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Search filters; every value is bound as a parameter, never spliced into SQL."""

    from_ms: int = 0
    to_ms: int = 2**62
    filters: tuple[tuple[str, str], ...] = ()
    text: str = ""
    limit: int = 10
    cursor: str | None = None


def row_to_trace_json(row: dict[str, Any]) -> dict[str, Any]:
    trace = Trace(
        trace_name=row["trace_name"],
        resource_type=row["resource_type"],
        time_ms=int(row["time_ms"]),
        project_id=row["project_id"],
        trace_rating=row["trace_rating"],
        trace_type=row["trace_type"],
        service_type=row["service_type"],
        resource_id=row["resource_id"],
        resource_name=row["resource_name"],
        user=TraceUser(row["user_id"], row["user_name"], row["domain_id"], row["domain_name"]),
        source_ip=row["source_ip"],
        request=row["request"],
        response=row["response"],
        code=row["code"],
        message=row["message"],
        api_version=row["api_version"],
        request_id=row["request_id"],
        trace_id=row["trace_id"],
    )
    return trace.to_json(record_time_ms=int(row["record_time_ms"]))


class AuditLog:
    """``AuditLog(backend).append([trace])``; ``search(TraceQuery(...))``; ``verify(from_ms, to_ms)``."""

    def __init__(self, backend: Backend, anchor_every: int = 100, anchor_file: Path | None = None) -> None:
        self._backend = backend
        self._db = backend.database
        self._anchor_every = anchor_every
        self._anchor_file = anchor_file
        self._lock = threading.Lock()
        head = backend.query(
            f"SELECT seq, hash FROM {self._db}.audit_traces ORDER BY seq DESC LIMIT 1"
        ).to_pylist()
        self._seq, self._head = (int(head[0]["seq"]), head[0]["hash"]) if head else (0, GENESIS)

    def append(self, traces: Sequence[Trace], now_ms: int | None = None) -> list[int]:
        """Chain and store traces in order; returns their sequence numbers."""
        record_time = now_ms if now_ms is not None else int(time.time() * 1000)
        with self._lock:
            rows, anchors = [], []
            seq, head = self._seq, self._head
            for trace in traces:
                seq += 1
                row = _row(trace, seq, record_time, head)
                row["hash"] = head = content_hash(head, row)
                rows.append(row)
                if seq % self._anchor_every == 0:
                    anchors.append({"seq": seq, "hash": head, "record_time_ms": record_time})
            if not rows:
                return []
            self._backend.insert("audit_traces", _table(rows))
            if anchors:
                self._backend.insert(
                    "audit_anchors",
                    pa.table(
                        {
                            "seq": pa.array([a["seq"] for a in anchors], pa.uint64()),
                            "hash": [a["hash"] for a in anchors],
                            "record_time_ms": pa.array([a["record_time_ms"] for a in anchors], pa.int64()),
                        }
                    ),
                )
                if self._anchor_file is not None:
                    with self._anchor_file.open("a") as out:
                        out.writelines(json.dumps(a) + "\n" for a in anchors)
            self._seq, self._head = seq, head
            return [int(r["seq"]) for r in rows]

    def search(self, query: TraceQuery) -> tuple[list[dict[str, Any]], str | None]:
        """Matching traces newest first, and the cursor of the next page (None at the end)."""
        params: dict[str, Any] = {"t0": query.from_ms, "t1": query.to_ms, "limit": query.limit + 1}
        where = ["time_ms >= {t0:Int64}", "time_ms <= {t1:Int64}"]
        for i, (name, value) in enumerate(query.filters):
            if name not in EXACT_FILTERS:
                raise ValueError(f"{name}: not a searchable field (searchable: {', '.join(EXACT_FILTERS)})")
            params[f"f{i}"] = value
            where.append(f"{name} = {{f{i}:String}}")
        if query.text:
            params["q"] = query.text
            # positionCaseInsensitiveUTF8 matches the text literally: %, _ and regex characters are plain.
            hits = " OR ".join(f"positionCaseInsensitiveUTF8({f}, {{q:String}}) > 0" for f in _TEXT_FIELDS)
            where.append(f"({hits})")
        if query.cursor:
            c_time, c_seq = decode_cursor(query.cursor)
            params.update(ct=c_time, cs=c_seq)
            where.append("(time_ms < {ct:Int64} OR (time_ms = {ct:Int64} AND seq < {cs:UInt64}))")
        rows = self._backend.query(
            f"SELECT * FROM {self._db}.audit_traces WHERE {' AND '.join(where)} "
            "ORDER BY time_ms DESC, seq DESC LIMIT {limit:UInt64}",
            params,
        ).to_pylist()
        page = rows[: query.limit]
        more = len(rows) > query.limit
        cursor = encode_cursor(int(page[-1]["time_ms"]), int(page[-1]["seq"])) if more and page else None
        return [row_to_trace_json(r) for r in page], cursor

    def verify(self, from_ms: int = 0, to_ms: int = 2**62) -> tuple[int, Tampering | None]:
        """Check records written in ``[from_ms, to_ms]`` (record time); (records checked, first break)."""
        span = self._backend.query(
            f"SELECT min(seq) AS lo, max(seq) AS hi, count() AS n FROM {self._db}.audit_traces "
            "WHERE record_time_ms >= {t0:Int64} AND record_time_ms <= {t1:Int64}",
            {"t0": from_ms, "t1": to_ms},
        ).to_pylist()[0]
        if not span["n"]:
            return 0, None
        lo, hi = int(span["lo"]), int(span["hi"])
        anchors = {
            int(a["seq"]): a["hash"]
            for a in self._backend.query(f"SELECT seq, hash FROM {self._db}.audit_anchors").to_pylist()
        }
        anchors.update(self._file_anchors())
        start_seq = max((s for s in anchors if s < lo), default=0)
        start_hash = anchors.get(start_seq, GENESIS)
        rows = self._backend.query(
            f"SELECT * FROM {self._db}.audit_traces WHERE seq > {{s0:UInt64}} AND seq <= {{s1:UInt64}} "
            "ORDER BY seq, hash",
            {"s0": start_seq, "s1": hi},
        ).to_pylist()
        if rows and int(rows[0]["seq"]) != start_seq + 1:
            first = rows[0]
            return len(rows), Tampering(
                "removed", int(first["seq"]), first["trace_id"], "records before it are missing"
            )
        return len(rows), verify_rows(rows, start_hash, anchors)

    def _file_anchors(self) -> dict[int, str]:
        if self._anchor_file is None or not self._anchor_file.exists():
            return {}
        lines = self._anchor_file.read_text().splitlines()
        return {int(a["seq"]): a["hash"] for a in map(json.loads, lines) if a}


def _row(trace: Trace, seq: int, record_time_ms: int, prev_hash: str) -> dict[str, Any]:
    day = dt.datetime.fromtimestamp(record_time_ms / 1000, dt.UTC).date()
    return {
        "seq": seq,
        "day": day,
        "time_ms": trace.time_ms,
        "record_time_ms": record_time_ms,
        "trace_id": trace.trace_id,
        "trace_name": trace.trace_name,
        "trace_rating": trace.trace_rating,
        "trace_type": trace.trace_type,
        "service_type": trace.service_type,
        "resource_type": trace.resource_type,
        "resource_id": trace.resource_id,
        "resource_name": trace.resource_name,
        "user_id": trace.user.id,
        "user_name": trace.user.name,
        "domain_id": trace.user.domain_id,
        "domain_name": trace.user.domain_name,
        "source_ip": trace.source_ip,
        "request": trace.request,
        "response": trace.response,
        "code": trace.code,
        "message": trace.message,
        "api_version": trace.api_version,
        "project_id": trace.project_id,
        "request_id": trace.request_id,
        "prev_hash": prev_hash,
    }


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, pa.Array] = {}
    for name in _COLUMNS:
        values = [r[name] for r in rows]
        if name == "seq":
            columns[name] = pa.array(values, pa.uint64())
        elif name in _INT_COLUMNS:
            columns[name] = pa.array(values, pa.int64())
        elif name == "day":
            columns[name] = pa.array(values, pa.date32())
        else:
            columns[name] = pa.array(values, pa.string())
    return pa.table(columns)
