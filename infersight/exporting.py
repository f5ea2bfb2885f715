"""The exporter every process uses: batches go through a disk buffer to their sender."""

from __future__ import annotations

from pathlib import Path

from exporters.buffer import BufferedExporter
from exporters.ingest_log import IngestLog
from exporters.sender import Sender
from infersight.config import Config, state_dir
from query.api.remote_write import LOG_DECODERS
from store.writes import SampleWriter


def buffered_exporter(config: Config, sender: Sender, name: str) -> BufferedExporter:
    """``name`` keeps processes sharing a folder apart (``run``, ``sidecar``)."""
    buffer = config.buffer
    folder = Path(buffer.dir) / name if buffer.dir else state_dir(config) / "buffer" / name
    return BufferedExporter(
        sender,
        folder,
        max_batch_samples=buffer.max_batch_samples,
        max_batch_age_s=buffer.max_batch_age_s,
        max_buffer_bytes=buffer.max_bytes,
    )


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
