"""``infersight sidecar``: scrape the configured targets and ship batches to ``infersight server``.

Used when the sidecar runs in its own process (a Kubernetes sidecar container) and the store is
embedded in the server: only one process may own a chDB data folder.
"""

from __future__ import annotations

import asyncio

from collector.sidecar import Sidecar
from exporters.http import HttpExporter
from exporters.retry import RetryingExporter
from infersight.config import Config


class SidecarProcess:
    def __init__(self, config: Config) -> None:
        self._http = HttpExporter(config.sidecar.ship_to)
        self.exporter = RetryingExporter(self._http)
        self.sidecars = [Sidecar(config.scrape, target, self.exporter) for target in config.targets]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(s.run()) for s in self.sidecars]

    async def stop(self) -> None:
        for sidecar in self.sidecars:
            await sidecar.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.exporter.flush()
        await self._http.aclose()
