"""The audit trail in ClickHouse: append (hash-chained, masked), search, verify.

One writer appends (the server process); it keeps the chain head in memory and reads it back from
the table on first use. Several servers on a cluster append under a shared lock, each re-reading
the head inside it (``chain_lock``). Signed digests written outside the database (``store.audit_digests``) let
``verify`` (``store.audit_verify``) catch what the chain alone cannot: the newest records deleted, the
table emptied, the chain re-hashed.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from loguru import logger

from model.audit import Trace, TraceUser
from store.audit_chain import GENESIS, content_hash
from store.audit_digests import DigestFolder
from store.audit_verify import AuditVerdict, verify_trail
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
    """``AuditLog(backend, digests=DigestFolder(path, key)).append([trace])``; ``search(TraceQuery(...))``;
    ``verify(from_ms, to_ms)``.

    With ``digests``, a signed digest of the records since the last one is written to that folder
    once ``digest_every_records`` records are waiting, by ``digest_if_due()`` when the last digest
    is ``digest_every_s`` old, and by ``close()``; each digest's hash is also noted in
    ``audit_anchors``, so a digest file deleted later is noticed as missing. The chain head is read from the
    table on first use, not in the constructor: a server may start while its store is unreachable.
    """

    def __init__(
        self,
        backend: Backend,
        digests: DigestFolder | None = None,
        digest_every_records: int = 100,
        digest_every_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        chain_lock: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        self._backend = backend
        self._db = backend.database
        # Several servers appending to one trail (a cluster): each append holds ``chain_lock``
        # (a ZooKeeper lock, infersight/leader.py) and reads the head from the table inside it,
        # so each record is chained exactly once after the one before it, whoever wrote that.
        self._shared = chain_lock is not None
        self._chain_lock = chain_lock or nullcontext
        self._digests = digests
        self._every_records = max(1, digest_every_records)
        self._every_s = digest_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seq: int | None = None
        self._head = GENESIS
        self._last_digest_s = clock()

    @property
    def digests(self) -> DigestFolder | None:
        return self._digests

    def _load_head(self) -> int:
        """The chain head from the table (once); called holding the lock."""
        if self._seq is None:
            head = self._backend.query(
                f"SELECT seq, hash FROM {self._db}.audit_traces ORDER BY seq DESC LIMIT 1"
            ).to_pylist()
            self._seq, self._head = (int(head[0]["seq"]), head[0]["hash"]) if head else (0, GENESIS)
            last = self._digests.last() if self._digests is not None else None
            if last is not None and last.last_seq > self._seq:
                logger.error(
                    "audit trail: digests cover records up to seq {} but the database ends at seq {}: "
                    "records were deleted (run `infersight audit verify`)",
                    last.last_seq,
                    self._seq,
                )
        return self._seq

    def append(self, traces: Sequence[Trace], now_ms: int | None = None) -> list[int]:
        """Chain and store traces in order; returns their sequence numbers."""
        record_time = now_ms if now_ms is not None else int(time.time() * 1000)
        with self._lock, self._chain_lock():
            if self._shared:
                self._seq = None  # another process may have appended since: read the head again
            rows = []
            seq, head = self._load_head(), self._head
            for trace in traces:
                seq += 1
                row = _row(trace, seq, record_time, head)
                row["hash"] = head = content_hash(head, row)
                rows.append(row)
            if not rows:
                return []
            self._backend.insert("audit_traces", _table(rows))
            self._seq, self._head = seq, head
            # Shared: the leader signs, on its timer (``digest_if_due``), not whoever appended.
            if not self._shared and self._uncovered() >= self._every_records:
                self._write_digest()
            return [int(r["seq"]) for r in rows]

    def digest_if_due(self) -> bool:
        """Write a digest when records have waited ``digest_every_s``; True if one was written."""
        with self._lock:
            if self._clock() - self._last_digest_s < self._every_s:
                return False  # not due: no shared lock taken
            if not self._shared:
                return self._seq is not None and self._write_digest()
            with self._chain_lock():
                if self._digests is not None:
                    self._digests.forget()  # the last leader may have signed since
                self._seq = None
                self._load_head()  # sign up to the head whoever wrote it
                return self._write_digest()

    def close(self) -> None:
        """Sign what is not yet covered (a clean stop leaves no record outside a digest)."""
        with self._lock, self._chain_lock():
            if self._shared and self._seq is not None:
                if self._digests is not None:
                    self._digests.forget()
                self._seq = None
                self._load_head()
            if self._seq is not None:
                self._write_digest()

    def _uncovered(self) -> int:
        if self._digests is None or self._seq is None:
            return 0
        last = self._digests.last()
        return self._seq - (last.last_seq if last else 0)

    def _write_digest(self) -> bool:
        """Sign the records since the last digest; called holding the lock. A digest that cannot
        be written is logged, not raised: the records are stored, and the next digest covers them."""
        self._last_digest_s = self._clock()
        if self._digests is None or self._seq is None or self._uncovered() <= 0:
            return False
        last = self._digests.last()
        try:
            digest = self._digests.write(
                last.last_seq + 1 if last else 1, self._seq, last.head_hash if last else GENESIS, self._head
            )
        except OSError as err:
            logger.error("audit digest not written to {}: {}", self._digests.folder, err)
            return False
        try:
            self._backend.insert(
                "audit_anchors",
                pa.table(
                    {
                        "seq": pa.array([digest.last_seq], pa.uint64()),
                        "hash": [digest.digest_hash()],
                        "record_time_ms": pa.array([digest.created_ms], pa.int64()),
                    }
                ),
            )
        except Exception as err:  # the digest file is what counts; the anchor row only notes it
            logger.warning("audit anchor for digest {} not stored: {}", digest.number, err)
        return True

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

    def verify(self, from_ms: int = 0, to_ms: int = 2**62) -> AuditVerdict:
        """Check records written in ``[from_ms, to_ms]`` (record time) against the chain and the
        digests, and the whole trail's end against the last digest."""
        return verify_trail(self._backend, self._digests, from_ms, to_ms)


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
