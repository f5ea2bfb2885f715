"""The server's ingest log: remote write and HTTP ingest answer once a request is in this write-ahead
log, and one background thread inserts what it holds into the store in large blocks.

Why: an INSERT costs chDB 4-13 ms whatever its size (it writes and commits a part), so a receiver
that inserts every request before answering spends most of its time on that fixed cost when
senders post small requests (Prometheus sends a few thousand samples per request). Prometheus itself
answers once samples are in its head and WAL, written but not fsynced; this log gives the same
promise — a request is acknowledged once its record is written to ``open.wal`` (not fsynced; a killed
process keeps it, a lost machine may not) — and then coalesces many requests per INSERT.

Durability and order. Records use the segment format of the sidecars' buffer
(``exporters/segments.py``): framed, CRC-checked, in ``SegmentQueue`` files sealed by size
(``max_batch_samples``) or age (``max_batch_age_s``), inserted oldest first and deleted only once
the store took them. A restart replays every segment left (a torn last record, never acknowledged, is
discarded). Replaying a segment the store had already taken before the process died is harmless: the
samples table is a ReplacingMergeTree and reads keep one point per (series, timestamp)
(docs/store.md, "No loss, no duplicates"). While the store is down segments accumulate and the
insert is retried every ``retry_interval_s``; requests are still accepted. Past ``max_bytes`` on disk
new requests are refused (``IngestLogFull``, HTTP 503: the sender keeps them and retries) — unlike
the sidecar buffer, which drops its oldest batches, the server never drops what it acknowledged.

Requests are decoded and checked at the door (``store.admission``: a bad body, or a sample the store
would refuse, is a 400 and never logged) before they are logged; the decoded columns stay in memory
for the insert, up to ``max_memory_samples`` pending, so the log is only read back after a restart.
Cardinality limits and their counters are the writer's (``SampleWriter.guard``), applied when the
block is inserted.

One client's bad data costs the others nothing. Should the store still refuse a block (what the
door did not foresee), the block is split in halves — requests first, then a lone request's
samples — and each half inserted, down to what the store refuses; the rest is stored, the refused
samples are dropped, counted (``guard.dropped["store_refused"]``, the server's
``infersight_ingest_dropped_samples_total``) and logged in one line per block. At most
``max_isolation_inserts`` inserts are spent on one block; past them a failing part is dropped whole.
A failure that says the store cannot take anything now (``store.insert_errors.is_transient``:
unreachable, out of memory or disk, too many parts) is never the data's: the block stays whole and is
retried, even in the middle of that search (halves already stored are stored again, and collapse).

Tables that vanished under a running server (a ClickHouse that lost its data, a database dropped by
hand: ``UNKNOWN_TABLE``, ``UNKNOWN_DATABASE``) are the store's state, not the data's either: the
schema is applied again (``repair_schema``, by default ``store.open.prepare`` on the writer's
backend), the writer forgets which series rows it had stored, and the block stays whole for a retry
— acknowledged samples are never dropped because their table was gone.

    log = IngestLog(store.writer, Path("data/wal"), decoders={KIND: decode})
    log.start()
    log.append(columns)            # written to open.wal when this returns
    log.flush()                    # True once everything appended before is in the store
    log.stop()                     # a last insert; what is left stays on disk for the next start
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from loguru import logger

from exporters.errors import is_retryable
from exporters.segments import (
    COLUMNS_KIND,
    Columns,
    SegmentQueue,
    decode_columns,
    encode_columns,
    frame,
    payload_kind,
    read_payloads,
)
from model.labels import Labels
from store.admission import format_series
from store.insert_errors import error_code, is_transient
from store.open import prepare

# ClickHouse's codes for a table or database that is not there: the schema must be applied again.
SCHEMA_MISSING_CODES = frozenset({60, 81})  # UNKNOWN_TABLE, UNKNOWN_DATABASE

Decoder = Callable[[memoryview], Columns]


class IndexedWriter(Protocol):
    """What the log inserts through (``store.writes.SampleWriter``)."""

    def write_indexed(
        self, labels: list[Labels], index: np.ndarray, ts: np.ndarray, values: np.ndarray
    ) -> int: ...


class IngestLogFull(RuntimeError):
    """The log holds ``max_bytes`` (the store has been down a while): the request is refused, not logged."""


@dataclass(slots=True)
class _Segment:
    """A sealed segment waiting for the store; ``chunks`` None: read it back from disk."""

    path: Path
    samples: int
    chunks: list[Columns] | None


class IngestLog:
    """See the module docstring. Thread-safe: request threads append, one thread inserts."""

    def __init__(
        self,
        writer: IndexedWriter,
        folder: Path,
        *,
        decoders: Mapping[int, Decoder] | None = None,
        max_batch_samples: int = 200_000,
        max_batch_age_s: float = 0.25,
        max_bytes: int = 1 << 30,
        max_memory_samples: int = 4_000_000,
        retry_interval_s: float = 1.0,
        fsync: bool = False,
        clock: Callable[[], float] = time.monotonic,
        max_isolation_inserts: int = 200,
        repair_schema: Callable[[], object] | None = None,
    ) -> None:
        self._writer = writer
        self._repair_schema = repair_schema or _default_repair(writer)
        self.schema_repairs = 0
        self.max_isolation_inserts = max_isolation_inserts
        self._decoders: dict[int, Decoder] = {COLUMNS_KIND: decode_columns, **(decoders or {})}
        self.max_batch_samples = max_batch_samples
        self.max_batch_age_s = max_batch_age_s
        self.max_bytes = max_bytes
        self.max_memory_samples = max_memory_samples
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        # The queue never drops by size: appends are refused first (see ``append``).
        self.queue = SegmentQueue(folder, max_bytes=1 << 62, fsync=fsync)
        self._cond = threading.Condition()
        self._open_chunks: list[Columns] = []
        self._opened_at: float | None = None
        self._sealed = [_Segment(p, int(p.stem.split("-")[1]), None) for p in self.queue.sealed()]
        self._retry_at = 0.0
        self._flush_wanted = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._sending = threading.Lock()
        self.accepted_samples = sum(s.samples for s in self._sealed)  # a replay counts as accepted
        self.stored_samples = 0
        self.rejected_samples = 0
        self.refused_samples = 0
        self.failed_inserts = 0
        if self._sealed:
            logger.info("ingest log {}: {} samples to replay", folder, self.accepted_samples)

    @property
    def pending_samples(self) -> int:
        return self.accepted_samples - self.stored_samples - self.rejected_samples

    def counts(self) -> dict[str, int]:
        """What the log did: accepted, stored, rejected by the store, refused (log full), pending."""
        return {
            "accepted": self.accepted_samples,
            "stored": self.stored_samples,
            "rejected": self.rejected_samples,
            "refused_log_full": self.refused_samples,
            "pending": self.pending_samples,
        }

    # -- request side -----------------------------------------------------------------------

    def append(self, columns: Columns, payload: bytes | None = None) -> None:
        """Log a decoded request; written (not fsynced) when this returns. ``payload``: the request
        in a form its decoder reads back (``segments.tagged``), else the columns are encoded.

        Raises ``IngestLogFull`` past ``max_bytes``, ``OSError`` if the disk refuses the write.
        """
        n = len(columns)
        if n == 0:
            return
        record = frame(payload if payload is not None else encode_columns(columns))
        with self._cond:
            if self.queue.bytes + len(record) > self.max_bytes:
                self.refused_samples += n
                raise IngestLogFull(f"ingest log holds {self.queue.bytes} bytes (max {self.max_bytes})")
            self.queue.append_record(record, n)
            self._open_chunks.append(columns)
            self.accepted_samples += n
            if self._opened_at is None:  # the thread learns when the segment's age runs out
                self._opened_at = self._clock()
                self._cond.notify_all()
            elif self.queue.open_samples >= self.max_batch_samples:
                self._cond.notify_all()

    # -- store side -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the inserting thread (replaying what an earlier run left first)."""
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="ingest-log", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Seal, try one last insert, stop the thread; what the store did not take stays on disk."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        else:
            self._pump(force=True)
        self.queue.close()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Insert everything appended before this call; True once it is all in the store, False if
        an insert failed (the store is down: it stays logged and is retried) or ``timeout_s`` passed."""
        if self._thread is None:
            return self._pump(force=True)
        deadline = None if timeout_s is None else self._clock() + timeout_s
        with self._cond:
            target, failures = self.accepted_samples, self.failed_inserts
            self._flush_wanted = True
            self._retry_at = 0.0
            self._cond.notify_all()
            while self.stored_samples + self.rejected_samples < target:
                if self.failed_inserts != failures or self._thread is None:
                    return False
                left = None if deadline is None else deadline - self._clock()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (wait := self._wait_s()) > 0:
                    self._cond.wait(wait)
                stopping = self._stopping
            try:
                self._pump(force=stopping)
            except Exception:  # the thread's boundary: log and keep inserting
                logger.exception("ingest log insert failed")
            if stopping:
                return

    def _wait_s(self) -> float:
        """Seconds until something is due (0: now); called holding the lock."""
        now = self._clock()
        if self._flush_wanted or self.queue.open_samples >= self.max_batch_samples:
            return 0.0
        waits = [self.max_batch_age_s]
        if self._opened_at is not None:
            waits.append(self._opened_at + self.max_batch_age_s - now)
        if self._sealed:
            waits.append(self._retry_at - now)
        return max(0.0, min(waits))  # idle: the age itself, a periodic look

    def _seal(self) -> None:
        """Seal the open segment with its chunks; called holding the lock."""
        self._flush_wanted = False
        path = self.queue.seal()
        self._opened_at = None
        chunks, self._open_chunks = self._open_chunks, []
        if path is None:
            return
        samples = sum(map(len, chunks))
        in_memory = sum(s.samples for s in self._sealed if s.chunks is not None)
        keep = chunks if in_memory + samples <= self.max_memory_samples else None
        self._sealed.append(_Segment(path, samples, keep))

    def _pump(self, force: bool) -> bool:
        """Seal if due, then insert sealed segments oldest first; True when none is left."""
        with self._sending:
            with self._cond:
                now = self._clock()
                aged = self._opened_at is not None and now - self._opened_at >= self.max_batch_age_s
                if force or aged or self._flush_wanted or self.queue.open_samples >= self.max_batch_samples:
                    self._seal()
                if not force and now < self._retry_at:
                    return False
                if force:
                    self._retry_at = 0.0
            while True:
                with self._cond:
                    batch = self._next_batch()
                if not batch:
                    return True
                if not self._insert(batch):
                    return False

    def _next_batch(self) -> list[_Segment]:
        """The oldest sealed segments, up to ``max_batch_samples`` (at least one)."""
        out: list[_Segment] = []
        total = 0
        for segment in self._sealed:
            if out and total + segment.samples > self.max_batch_samples:
                break
            out.append(segment)
            total += segment.samples
        return out

    def _insert(self, batch: list[_Segment]) -> bool:
        samples = sum(s.samples for s in batch)
        dropped: Counter[str] = Counter()
        try:
            chunks = [c for segment in batch for c in (segment.chunks or self._read(segment.path))]
        except Exception as err:  # the disk: a read error is retried, a corrupt segment dropped
            if is_retryable(err):
                return self._retry_later(err)
            logger.error("ingest log segment unreadable, {} samples dropped: {}", samples, err)
            dropped["unreadable_segment"] = samples
        else:
            try:
                dropped = self._write_isolating(chunks)
            except Exception as err:  # the store cannot take anything now: the batch stays whole
                if _schema_missing(err):
                    self._repair(err)
                return self._retry_later(err)
        refused = sum(dropped.values())
        self._count_dropped(dropped)
        with self._cond:
            for segment in batch:
                self.queue.remove(segment.path)
                self._sealed.remove(segment)
            self.stored_samples += samples - refused
            self.rejected_samples += refused
            self._cond.notify_all()
        return True

    def _repair(self, err: BaseException) -> None:
        """Apply the schema again after an insert found a table missing; the block is retried."""
        logger.error("store tables missing ({}); applying the schema again, the block is kept", err)
        try:
            if self._repair_schema is not None:
                self._repair_schema()
        except Exception as failed:  # the store went on failing: the next retry tries again
            logger.warning("applying the schema failed: {}", failed)
            return
        self.schema_repairs += 1
        forget = getattr(self._writer, "forget_stored_series", None)
        if forget is not None:
            forget()

    def _retry_later(self, err: BaseException) -> bool:
        with self._cond:
            self.failed_inserts += 1
            self._retry_at = self._clock() + self.retry_interval_s
            self._cond.notify_all()
        logger.warning("store unreachable, {} samples kept in the ingest log: {}", self.pending_samples, err)
        return False

    def _write_isolating(self, chunks: list[Columns]) -> Counter[str]:
        """Insert the requests in one block; if the store refuses the block, find what it refuses
        by halves — requests first, then a request's samples — and insert the rest. Returns the
        samples dropped by reason (logged here, once). Raises what the store raises when it cannot
        take anything now (``_transient``): nothing is dropped then."""
        try:
            self._writer.write_indexed(*_join(chunks))
            return Counter()
        except Exception as err:
            if _transient(err) or _schema_missing(err):
                raise
            first_error = err
        refused: list[tuple[Columns, BaseException]] = []
        budget = self.max_isolation_inserts
        work: list[list[Columns]] = _halves(chunks)
        while work:
            part = work.pop()
            if budget <= 0:  # past the budget a failing part is dropped whole, not split further
                refused.extend((c, first_error) for c in part)
                continue
            budget -= 1
            try:
                self._writer.write_indexed(*_join(part))
                continue
            except Exception as err:
                if _transient(err) or _schema_missing(err):
                    raise
                error = err
            if len(part) > 1 or len(part[0]) > 1:
                work.extend(reversed(_halves(part)))
            else:
                refused.append((part[0], error))
        dropped = Counter({"store_refused": sum(len(c) for c, _ in refused)})
        if refused:
            example, error = refused[0]
            logger.error(
                "store refused {} of {} samples in one insert block, dropped (the rest is stored);"
                " first: series {} at {} ms: {}: {}",
                dropped["store_refused"],
                sum(map(len, chunks)),
                format_series(example.labels[int(example.index[0])]),
                int(example.ts_ms[0]),
                type(error).__name__,
                error,
            )
        return +dropped

    def _count_dropped(self, dropped: Counter[str]) -> None:
        """Into the writer's drop counters (``infersight_ingest_dropped_samples_total{reason}``)."""
        guard = getattr(self._writer, "guard", None)
        if dropped and guard is not None:
            guard.dropped.update(dropped)

    def _read(self, path: Path) -> list[Columns]:
        """A segment's requests, decoded from disk (after a restart, or when memory ran over)."""
        out = []
        for payload in read_payloads(path.read_bytes(), str(path)):
            kind, data = payload_kind(payload)
            decoder = self._decoders.get(kind)
            if decoder is None:
                raise ValueError(f"ingest log {path}: record of unknown kind {kind}")
            out.append(decoder(data))
        return out


def _schema_missing(err: BaseException) -> bool:
    """The insert found its table (or database) gone: apply the schema, keep the block."""
    return error_code(err) in SCHEMA_MISSING_CODES


def _default_repair(writer: IndexedWriter) -> Callable[[], object] | None:
    """``store.open.prepare`` on the writer's backend, where it has one."""
    backend = getattr(writer, "backend", None)
    if backend is None:
        return None
    return lambda: prepare(backend)


def _transient(err: BaseException) -> bool:
    """The store could not take the block now, whatever it held: keep it, retry later."""
    return is_retryable(err) or is_transient(err)


def _halves(chunks: list[Columns]) -> list[list[Columns]]:
    """Two parts of about half the samples each: halves of the request list, or of a lone
    request's samples."""
    if len(chunks) > 1:
        mid = len(chunks) // 2
        return [chunks[:mid], chunks[mid:]]
    c = chunks[0]
    mid = len(c) // 2
    return [
        [Columns(c.labels, c.index[:mid], c.ts_ms[:mid], c.values[:mid])],
        [Columns(c.labels, c.index[mid:], c.ts_ms[mid:], c.values[mid:])],
    ]


def _join(chunks: list[Columns]) -> tuple[list[Labels], np.ndarray, np.ndarray, np.ndarray]:
    """One block of several requests: their label lists end to end, indexes shifted to match. A
    request whose label list equals an earlier one's (a sender posts the same series again and again;
    list equality is an identity check per element for the decoder's cached label sets) reuses its
    place, so the writer looks up each series once per block rather than once per request."""
    if len(chunks) == 1:
        c = chunks[0]
        return c.labels, c.index, c.ts_ms, c.values
    labels: list[Labels] = []
    placed: list[tuple[list[Labels], int]] = []  # distinct label lists, most recent first
    indexes = []
    for c in chunks:
        offset = next((at for seen, at in placed[:4] if seen == c.labels), None)
        if offset is None:
            offset = len(labels)
            labels.extend(c.labels)
            placed.insert(0, (c.labels, offset))
        indexes.append(np.asarray(c.index, np.intp) + offset)
    return (
        labels,
        np.concatenate(indexes),
        np.concatenate([c.ts_ms for c in chunks]),
        np.concatenate([c.values for c in chunks]),
    )
