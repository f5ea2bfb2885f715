"""The exporters every process uses: batches go through a disk buffer to their sender.

A sidecar ships four kinds — samples, closed sketch windows, events (its Kubernetes events and
probe transitions), and its targets' metric metadata — each through a buffer of its own
(``SidecarExporters``), so each survives an
outage of the server and a restart of the sidecar, and reaches the store once (``exporters/records.py``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.window import SketchRow
from exporters.buffer import BufferedExporter
from exporters.ingest_log import IngestLog
from exporters.records import EVENTS, METADATA, SAMPLES, SKETCH_ROWS, RecordCodec
from exporters.sender import Sender, SendWith
from infersight.config import Config, state_dir
from model.events import Event
from model.metadata import MetadataRecord
from model.series import Sample
from query.api.remote_write import LOG_DECODERS
from store.writes import SampleWriter


def buffered_exporter(
    config: Config, sender: Sender[Any], name: str, codec: RecordCodec[Any] = SAMPLES
) -> BufferedExporter[Any]:
    """``name`` keeps processes and kinds sharing a folder apart (``run``, ``sidecar``,
    ``sidecar-sketches`` …); ``codec``: what the buffer holds (samples by default)."""
    buffer = config.buffer
    folder = Path(buffer.dir) / name if buffer.dir else state_dir(config) / "buffer" / name
    return BufferedExporter(
        sender,
        folder,
        codec=codec,
        max_batch_samples=buffer.max_batch_samples,
        max_batch_age_s=buffer.max_batch_age_s,
        max_buffer_bytes=buffer.max_bytes,
    )


async def _discard(_: list[MetadataRecord]) -> None:
    return None


@dataclass
class SidecarExporters:
    """A sidecar's four buffers: ``samples`` is the pod's consumer, ``sketches.consume`` its sketch
    sink, ``events.consume`` its event sink and ``metadata.consume`` its metadata sink."""

    samples: BufferedExporter[Sample]
    sketches: BufferedExporter[SketchRow]
    events: BufferedExporter[Event]
    metadata: BufferedExporter[MetadataRecord]

    @classmethod
    def build(
        cls,
        config: Config,
        samples: Sender[Sample],
        sketches: Sender[SketchRow],
        events: Sender[Event],
        name: str = "sidecar",
        metadata: Sender[MetadataRecord] | None = None,
    ) -> SidecarExporters:
        """``metadata``: where the targets' metadata goes (none: dropped as it leaves the buffer)."""
        return cls(
            buffered_exporter(config, samples, name),
            buffered_exporter(config, sketches, f"{name}-sketches", SKETCH_ROWS),
            buffered_exporter(config, events, f"{name}-events", EVENTS),
            buffered_exporter(config, metadata or SendWith(_discard), f"{name}-metadata", METADATA),
        )

    def all(self) -> tuple[BufferedExporter[Any], ...]:
        return (self.samples, self.sketches, self.events, self.metadata)

    async def start(self) -> None:
        for exporter in self.all():
            await exporter.start()

    async def flush(self) -> bool:
        """Send everything buffered now; True when nothing is left."""
        done = await asyncio.gather(*(exporter.flush() for exporter in self.all()))
        return all(done)

    async def stop(self) -> None:
        """Seal and try a last send of each; what is left stays on disk for the next start."""
        for exporter in self.all():
            await exporter.stop()


def ingest_log(config: Config, writer: SampleWriter) -> IngestLog:
    """The server's write-ahead log in front of the store for ingest and remote write, beside the
    export buffers and bounded by the same ``buffer.max_bytes``."""
    buffer = config.buffer
    folder = Path(buffer.dir) / "ingest" if buffer.dir else state_dir(config) / "buffer" / "ingest"
    return IngestLog(
        writer,
        folder,
        decoders=LOG_DECODERS,
        max_bytes=buffer.max_bytes,
        max_batch_samples=buffer.ingest_block_samples,
        max_batch_age_s=buffer.ingest_block_age_s,
        fsync=buffer.ingest_fsync,
    )
