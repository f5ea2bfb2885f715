"""``infersight sidecar``: everything next to one pod, shipping to the store or the server.

Ships through the server (``sidecar.ship_to``) when the store is embedded — only one process may
own a chDB data folder — and writes to a ClickHouse server directly when ``store.dsn`` is one.
"""

from __future__ import annotations

import asyncio

from collector.proxy.exemplars import Exemplar
from collector.window import SketchRow
from exporters.http import HttpExporter
from exporters.sender import Sender, SendWith
from exporters.store import StoreExporter
from infersight.config import Config
from infersight.exporting import SidecarExporters
from infersight.pod import PodCollector
from model.metadata import MetadataRecord
from store.exemplars import ExemplarStore
from store.metadata import MetadataStore
from store.open import Store, open_store
from store.sketches import SketchWriter


class SidecarProcess:
    def __init__(self, config: Config) -> None:
        self._http = HttpExporter(config.sidecar.ship_to, api_key=config.sidecar.api_key)
        self._store: Store | None = None
        sender: Sender = self._http
        if config.store.dsn.startswith("clickhouse://"):
            self._store = open_store(config.store.dsn, config.store.database)
            sender = StoreExporter(self._store.writer)
        # Samples, sketch rows, events and metadata each through a disk buffer of their own.
        self.exporters = SidecarExporters.build(
            config,
            sender,
            SendWith(self._send_sketches),
            SendWith(self._http.send_events),
            metadata=SendWith(self._send_metadata),
        )
        self.exporter = self.exporters.samples
        self.pod = PodCollector(
            config,
            self.exporter,
            self.exporters.events.consume,
            self.exporters.sketches.consume,
            metadata=self.exporters.metadata.consume,
            exemplars=self._send_exemplars,
        )

    async def _send_sketches(self, rows: list[SketchRow]) -> None:
        if self._store is not None:
            await asyncio.to_thread(SketchWriter(self._store.backend).write, rows)
        else:
            await self._http.send_sketches(rows)

    async def _send_exemplars(self, exemplars: list[Exemplar]) -> None:
        """Straight to the store or the server, without a disk buffer: exemplars are best-effort."""
        if self._store is not None:
            await asyncio.to_thread(ExemplarStore(self._store.backend).write, exemplars)
        else:
            await self._http.send_exemplars(exemplars)

    async def _send_metadata(self, records: list[MetadataRecord]) -> None:
        if self._store is not None:
            await asyncio.to_thread(MetadataStore(self._store.backend).write, records)
        else:
            await self._http.send_metadata(records)

    async def start(self) -> None:
        await self.exporters.start()
        await self.pod.start()

    async def stop(self) -> None:
        await self.pod.stop()
        await self.exporters.stop()
        await self._http.aclose()
        if self._store is not None:
            self._store.close()
