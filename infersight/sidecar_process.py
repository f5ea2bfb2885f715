"""``infersight sidecar``: scrape the configured targets and ship batches to ``infersight server``.

Used when the sidecar runs in its own process (a Kubernetes sidecar container) and the store is
embedded in the server: only one process may own a chDB data folder.
"""

from __future__ import annotations

import asyncio

from collector.group import SidecarGroup
from collector.k8s_events import KubernetesEventWatcher
from exporters.http import HttpExporter
from exporters.retry import RetryingExporter
from infersight.config import Config
from infersight.k8s import start_watch


class SidecarProcess:
    def __init__(self, config: Config) -> None:
        self._http = HttpExporter(config.sidecar.ship_to)
        self.exporter = RetryingExporter(self._http)
        self.sidecars = SidecarGroup(config.scrape, config.targets, self.exporter)
        self._config = config
        self._watch: tuple[KubernetesEventWatcher, asyncio.Task[None]] | None = None

    async def start(self) -> None:
        await self.sidecars.start()
        self._watch = start_watch(self._config, self._http.send_events)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch[0].stop()
            self._watch[1].cancel()
            await asyncio.gather(self._watch[1], return_exceptions=True)
        await self.sidecars.stop()
        await self.exporter.flush()
        await self._http.aclose()
