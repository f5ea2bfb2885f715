"""The exporter in front of the store: batches by size and age, a bounded disk buffer, ordered replay.

Every batch handed to ``consume`` is appended to the open disk segment before ``consume`` returns
(a write-ahead log: a SIGKILLed sidecar loses nothing it accepted). A segment is sealed when it holds
``max_batch_samples`` or is ``max_batch_age_s`` old, and sealed segments are sent oldest first; a
segment leaves the disk only once the store has taken it. While the store is unreachable segments
accumulate up to ``max_buffer_bytes``, then the oldest are dropped (counted in ``dropped_samples``
and logged). A permanent refusal drops that one segment (``rejected_samples``) so it cannot block the
queue. Re-sending a segment whose first send was cut mid-way, or whose answer was lost after the
store took it, is harmless: every item carries an identity from the moment it is on disk, and the
store keeps one of each (``exporters/records.py``): samples by (series, timestamp), sketch rows by
``row_id``, events by ``event_id`` (docs/store.md, "No loss, no duplicates").

One exporter buffers one kind of batch (``codec``: samples by default, ``SKETCH_ROWS``, ``EVENTS``),
each in a folder of its own, so an outage of one destination never holds up another kind. Counts
(``exported_samples``, ``pending_samples`` …) are in the codec's items: samples, rows or events.

    exporter = BufferedExporter(StoreExporter(store.writer), Path("/var/lib/infersight/buffer"))
    await exporter.start()        # background sealing by age and retries
    await exporter.consume(batch)
    await exporter.stop()         # seals and tries a last send; what is left stays on disk

While the destination is unreachable, retries fail every ``retry_interval_s``: the log gets one
warning when that begins, a summary at most every minute (sends failed, items buffered, the last
reason) and one INFO line when sending works again (``collector/outage.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from loguru import logger

from collector.outage import OutageLog
from exporters.errors import is_retryable
from exporters.records import SAMPLES, RecordCodec
from exporters.segments import SegmentQueue
from exporters.sender import Sender

T = TypeVar("T")


class BufferedExporter(Generic[T]):
    """A collector ``Consumer`` with a disk buffer; see the module docstring."""

    def __init__(
        self,
        sender: Sender[T],
        folder: Path,
        *,
        codec: RecordCodec[Any] = SAMPLES,
        max_batch_samples: int = 10_000,
        max_batch_age_s: float = 1.0,
        max_buffer_bytes: int = 256 << 20,
        retry_interval_s: float = 1.0,
        fsync: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sender = sender
        self.codec: RecordCodec[T] = codec
        self.queue = SegmentQueue(folder, max_buffer_bytes, fsync)
        self.max_batch_samples = max_batch_samples
        self.max_batch_age_s = max_batch_age_s
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        self._opened_at: float | None = None
        self._retry_at = 0.0
        self._sending = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.exported_samples = 0
        self.rejected_samples = 0
        self.outage = OutageLog(f"sending {codec.unit} buffered in {folder}", tries="sends", clock=clock)

    @property
    def dropped_samples(self) -> int:
        return self.queue.dropped_samples

    @property
    def pending_samples(self) -> int:
        return self.queue.pending_samples

    def counts(self) -> dict[str, int]:
        """What the exporter did, for its own series (``store.limits.counter_samples``)."""
        return {
            "exported": self.exported_samples,
            "dropped_buffer_full": self.dropped_samples,
            "rejected": self.rejected_samples,
            "pending": self.pending_samples,
        }

    async def consume(self, batch: list[T]) -> None:
        """Accept a batch: on disk when this returns; sent now if a batch is complete and the store is up.

        Items without an identity get theirs as they are written (see ``exporters/records.py``)."""
        if batch:
            self.queue.append_record(self.codec.encode(batch), len(batch))
            if self._opened_at is None:
                self._opened_at = self._clock()
        if self.queue.open_samples >= self.max_batch_samples:
            self._seal()
        await self.flush(force=False)

    def _seal(self) -> None:
        self.queue.seal()
        self._opened_at = None

    async def tick(self) -> None:
        """Seal the open batch if it is old enough, and send what is due."""
        if self._opened_at is not None and self._clock() - self._opened_at >= self.max_batch_age_s:
            self._seal()
        await self.flush(force=False)

    async def flush(self, force: bool = True) -> bool:
        """Send sealed segments oldest first (``force``: seal the open one and ignore the retry pause).

        Returns True when nothing sealed is left.
        """
        if force:
            self._seal()
            self._retry_at = 0.0
        if self._clock() < self._retry_at:
            return False
        async with self._sending:
            return await self._send_sealed()

    async def _send_sealed(self) -> bool:
        unit = self.codec.unit
        while (head := self.queue.oldest_payloads()) is not None:
            path, payloads = head
            items: list[T] = []
            try:
                items = self._decode(path, payloads)
                if items:
                    await self._sender.send(items)
            except Exception as err:
                if is_retryable(err):
                    self._retry_at = self._clock() + self.retry_interval_s
                    pending = self.queue.pending_samples
                    self.outage.failed(f"destination unreachable, {pending} {unit} buffered on disk: {err}")
                    return False
                self.outage.succeeded()  # an answer, even a refusal: the destination is reachable
                self.rejected_samples += len(items)
                logger.error("destination refused a batch of {} {}, dropped: {}", len(items), unit, err)
            else:
                self.exported_samples += len(items)
                self.outage.succeeded()
            self.queue.remove(path)
        return True

    def _decode(self, path: Path, payloads: list[bytes]) -> list[T]:
        """The items of a segment's records; a record that does not decode is counted and skipped."""
        items: list[T] = []
        for payload in payloads:
            try:
                items.extend(self.codec.decode(payload))
            except Exception as err:  # a corrupt or foreign record must not block the queue
                self.rejected_samples += 1
                logger.error("buffer {}: undecodable {} record skipped: {!r}", path, self.codec.unit, err)
        return items

    async def start(self) -> None:
        """Run ``tick`` in the background every quarter of the batch age (at least every 50 ms)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        interval = max(0.05, min(self.max_batch_age_s, self.retry_interval_s) / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except Exception:  # the loop boundary: log and keep the exporter alive
                logger.exception("buffered exporter tick failed")

    async def stop(self) -> None:
        """Stop the background task, seal, try one last send; safe without ``start`` and twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush(force=True)
        self.queue.close()
