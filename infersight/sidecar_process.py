"""``infersight sidecar``: scrape the configured targets and ship batches to ``infersight server``.

Used when the sidecar runs in its own process (a Kubernetes sidecar container) and the store is
embedded in the server: only one process may own a chDB data folder.
"""

from __future__ import annotations

import asyncio

from collector.group import SidecarGroup
from collector.k8s_events import KubernetesEventWatcher
from exporters.http import HttpExporter
from exporters.sender import Sender
from exporters.store import StoreExporter
from infersight.config import Config
from infersight.exporting import buffered_exporter
from infersight.k8s import start_watch
from store.open import Store, open_store


class SidecarProcess:
    """Ships through the server (``sidecar.ship_to``) when the store is embedded; writes to a
    ClickHouse server directly when ``store.dsn`` is one (no central hop needed)."""

    def __init__(self, config: Config) -> None:
        self._http = HttpExporter(config.sidecar.ship_to)
        self._store: Store | None = None
        sender: Sender = self._http
        if config.store.dsn.startswith("clickhouse://"):
            self._store = open_store(config.store.dsn, config.store.database)
            sender = StoreExporter(self._store.writer)
        self.exporter = buffered_exporter(config, sender, "sidecar")
        self.sidecars = SidecarGroup(config.scrape, config.targets, self.exporter)
        self._config = config
        self._watch: tuple[KubernetesEventWatcher, asyncio.Task[None]] | None = None

    async def start(self) -> None:
        await self.exporter.start()
        await self.sidecars.start()
        self._watch = start_watch(self._config, self._http.send_events)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch[0].stop()
            self._watch[1].cancel()
            await asyncio.gather(self._watch[1], return_exceptions=True)
        await self.sidecars.stop()
        await self.exporter.stop()
        await self._http.aclose()
        if self._store is not None:
            self._store.close()
