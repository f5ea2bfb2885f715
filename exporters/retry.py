"""Keeps batches that could not be exported and sends them, in order, before newer ones.

A bounded memory queue: when it is full the oldest batch is dropped, counted and logged. For batching
by size and age and a disk buffer that survives outages and restarts, use ``exporters.buffer``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from loguru import logger

from model.series import Sample


class Sender(Protocol):
    async def send(self, batch: list[Sample]) -> None: ...


class RetryingExporter:
    """A collector ``Consumer``: ``RetryingExporter(StoreExporter(writer)).consume(batch)``."""

    def __init__(self, sender: Sender, max_pending_samples: int = 1_000_000) -> None:
        self._sender = sender
        self._pending: deque[list[Sample]] = deque()
        # Sidecars share one exporter: one flush at a time keeps batches in order and sent once.
        self._flushing = asyncio.Lock()
        self._pending_samples = 0
        self._max_pending = max_pending_samples
        self.dropped_samples = 0
        self.exported_samples = 0

    @property
    def pending_samples(self) -> int:
        return self._pending_samples

    async def consume(self, batch: list[Sample]) -> None:
        if batch:
            self._pending.append(batch)
            self._pending_samples += len(batch)
        self._drop_overflow()
        await self.flush()

    async def flush(self) -> None:
        """Send pending batches oldest first; stop at the first failure and keep the rest."""
        async with self._flushing:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        while self._pending:
            batch = self._pending[0]
            try:
                await self._sender.send(batch)
            except Exception as err:
                logger.warning("export failed, {} samples kept for retry: {}", self._pending_samples, err)
                return
            self._pending.popleft()
            self._pending_samples -= len(batch)
            self.exported_samples += len(batch)

    def _drop_overflow(self) -> None:
        while self._pending_samples > self._max_pending and len(self._pending) > 1:
            oldest = self._pending.popleft()
            self._pending_samples -= len(oldest)
            self.dropped_samples += len(oldest)
            logger.error("export buffer full: dropped {} oldest samples", len(oldest))
