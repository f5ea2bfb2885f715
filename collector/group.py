"""All the sidecars of one process, started and stopped together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from collector.config import ScrapeConfig, TargetConfig
from collector.metadata import MetadataSink
from collector.pipeline import Consumer
from collector.sidecar import Sidecar


class SidecarGroup:
    """One ``Sidecar`` per target, all feeding one consumer. ``await group.start()`` … ``stop()``."""

    def __init__(
        self,
        scrape: ScrapeConfig,
        targets: Sequence[TargetConfig],
        consumer: Consumer,
        metadata: MetadataSink | None = None,
    ) -> None:
        """``metadata``: where each target's TYPE/HELP/UNIT go (none: not kept)."""
        self.sidecars = [Sidecar(scrape, target, consumer, metadata=metadata) for target in targets]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(sidecar.run()) for sidecar in self.sidecars]

    async def scrape_all(self) -> None:
        """Scrape every target once, now."""
        await asyncio.gather(*(sidecar.scrape_once() for sidecar in self.sidecars))

    async def stop(self) -> None:
        """Stop every sidecar and wait for its loop to end; safe twice and without a start."""
        await asyncio.gather(*(sidecar.stop() for sidecar in self.sidecars))
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
