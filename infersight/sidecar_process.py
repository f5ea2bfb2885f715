"""``infersight sidecar``: everything next to one pod, shipping to the store or the server.

Ships through the server (``sidecar.ship_to``) when the store is embedded — only one process may
own a chDB data folder — and writes to a ClickHouse server directly when ``store.dsn`` is one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from collector.proxy.exemplars import Exemplar
from collector.window import SketchRow
from exporters.buffer import BufferedExporter
from exporters.http import HttpExporter
from exporters.otlp import GenAiAttributes, OtlpExporter, parse_headers
from exporters.records import SKETCH_ROWS
from exporters.sender import Sender, SendWith
from exporters.store import StoreExporter
from infersight.config import Config
from infersight.exporting import SidecarExporters, buffered_exporter
from infersight.pod import PodCollector
from infersight.server_slos import ServerSlos
from model.metadata import MetadataRecord
from store.exemplars import ExemplarStore
from store.metadata import MetadataStore
from store.open import Store, open_store
from store.sketches import SketchWriter


class Fanout:
    """One consumer handing each batch to several (the server's buffer, the OTLP buffer)."""

    def __init__(self, *consumers: Any) -> None:
        self.consumers = consumers

    async def consume(self, batch: list[Any]) -> None:
        for consumer in self.consumers:
            await consumer.consume(batch)


def otlp_exporter(config: Config) -> OtlpExporter:
    """The sidecar's OTLP exporter as ``otlp_export`` configures it."""
    section = config.otlp_export
    first = config.targets[0] if config.targets else None
    genai = GenAiAttributes(
        operation_name=section.genai_operation,
        provider_name=section.genai_provider or (first.engine if first else ""),
        request_model=section.genai_model,
        server_address=section.server_address or (first.host if first else ""),
    )
    # No resource attributes: each series carries its own identity labels as point attributes.
    return OtlpExporter(section.endpoint, parse_headers(section.headers), section.timeout_s, genai=genai)


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
        samples: Any = self.exporter
        sketches: Any = self.exporters.sketches
        # OTLP: buffers of their own, so an OTLP endpoint that is down never holds up the server's.
        self.otlp: OtlpExporter | None = None
        self.otlp_buffers: tuple[BufferedExporter[Any], ...] = ()
        if config.otlp_export.endpoint:
            self.otlp = otlp_exporter(config)
            self.otlp_buffers = (
                buffered_exporter(config, self.otlp, "sidecar-otlp"),
                buffered_exporter(
                    config, SendWith(self.otlp.send_sketches), "sidecar-otlp-sketches", SKETCH_ROWS
                ),
            )
            samples, sketches = Fanout(samples, self.otlp_buffers[0]), Fanout(sketches, self.otlp_buffers[1])
        self.samples_consumer, self.sketch_consumer = samples, sketches  # what the pod hands its batches to
        # Shipping through the server, its proxy judges against the SLOs the server's API holds too.
        self.server_slos: ServerSlos | None = None
        if self._store is None and config.proxy is not None:
            self.server_slos = ServerSlos(config.slos, self._http.fetch_slos, config.sidecar.slos_interval_s)
        follower = self.server_slos
        self.pod = PodCollector(
            config,
            samples,
            self.exporters.events.consume,
            sketches.consume,
            metadata=self.exporters.metadata.consume,
            exemplars=self._send_exemplars,
            slos=(lambda: follower.slos) if follower is not None else None,
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
        if self.server_slos is not None:
            await self.server_slos.start()
        await self.exporters.start()
        for buffer in self.otlp_buffers:
            await buffer.start()
        await self.pod.start()

    async def stop(self) -> None:
        await self.pod.stop()
        if self.server_slos is not None:
            await self.server_slos.stop()
        await self.exporters.stop()
        for buffer in self.otlp_buffers:
            await buffer.stop()
        if self.otlp is not None:
            self.otlp.shutdown()
        await self._http.aclose()
        if self._store is not None:
            self._store.close()
