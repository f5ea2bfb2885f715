"""``infersight sidecar``: scrape the configured targets and ship batches to ``infersight server``.

Used when the sidecar runs in its own process (a Kubernetes sidecar container) and the store is
embedded in the server: only one process may own a chDB data folder.
"""

from __future__ import annotations

from collector.group import SidecarGroup
from exporters.http import HttpExporter
from exporters.retry import RetryingExporter
from infersight.config import Config


class SidecarProcess:
    def __init__(self, config: Config) -> None:
        self._http = HttpExporter(config.sidecar.ship_to)
        self.exporter = RetryingExporter(self._http)
        self.sidecars = SidecarGroup(config.scrape, config.targets, self.exporter)

    async def start(self) -> None:
        await self.sidecars.start()

    async def stop(self) -> None:
        await self.sidecars.stop()
        await self.exporter.flush()
        await self._http.aclose()
