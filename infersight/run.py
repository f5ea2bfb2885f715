"""``infersight run``: the one-machine mode — store, API and a sidecar per target in one process."""

from __future__ import annotations

import asyncio

from loguru import logger

from collector.group import SidecarGroup
from exporters.retry import RetryingExporter
from exporters.store import StoreExporter
from infersight.asgi import AsgiServer
from infersight.config import Config
from query.api.app import create_app
from store.open import Store, open_store


class Runtime:
    """Everything ``infersight run`` starts, with one ``start()`` and one ``stop()``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: Store | None = None
        self.server: AsgiServer | None = None
        self.exporter: RetryingExporter | None = None
        self.sidecars: SidecarGroup | None = None

    @property
    def api_url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def exported_samples(self) -> int:
        return self.exporter.exported_samples if self.exporter else 0

    @property
    def pending_samples(self) -> int:
        return self.exporter.pending_samples if self.exporter else 0

    async def start(self) -> None:
        cfg = self.config
        self.store = await asyncio.to_thread(open_store, cfg.store.dsn, cfg.store.database)
        self.server = AsgiServer(create_app(self.store), cfg.server.host, cfg.server.port)
        await self.server.start()
        logger.info(
            "Prometheus API on {}/api/v1 (Grafana data source URL: {})", self.server.url, self.server.url
        )
        self.exporter = RetryingExporter(StoreExporter(self.store.writer))
        self.sidecars = SidecarGroup(cfg.scrape, cfg.targets, self.exporter)
        await self.sidecars.start()
        logger.info("{} sidecar(s) scraping every {} s", len(cfg.targets), cfg.scrape.interval_s)

    async def scrape_all(self) -> None:
        """Scrape every target once now (the demo's final scrape)."""
        if self.sidecars is not None:
            await self.sidecars.scrape_all()

    async def stop(self) -> None:
        """Stop sidecars, flush what is pending, stop the API, close the store. Safe twice."""
        if self.sidecars is not None:
            await self.sidecars.stop()
        if self.exporter is not None:
            await self.exporter.flush()
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None
