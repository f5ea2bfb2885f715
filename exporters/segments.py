"""Batches on disk: a compact record format and a bounded, ordered queue of segment files.

A segment is a file of records ``<u32 length><u32 crc32><payload>``. A payload is one batch as
label sets (JSON) plus three numpy columns (label index, ts_ms, value bits — so NaN payloads such
as Prometheus' staleness marker survive); or, tagged ``<u32 0><u32 kind><u32 samples>`` (a JSON
length is never 0), a payload its writer decodes itself — the server's ingest log keeps a
remote-write request as its snappy body, ten times smaller than its label sets as JSON and free to
write. The open segment (``open.wal``) is appended to as batches arrive; sealing renames it to
``<seq>-<samples>.seg``. A torn last record (the process was killed inside ``write``) fails its
length or CRC check and is discarded with a log line.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger

from model.labels import Labels
from model.series import Sample

_HEADER = struct.Struct("<II")
_TAG = struct.Struct("<III")  # 0, kind, samples
_OPEN = "open.wal"
COLUMNS_KIND = 0  # the untagged payload: label sets as JSON + columns


@dataclass(frozen=True, slots=True)
class Columns:
    """A batch as columns: sample ``i`` is (``labels[index[i]]``, ``ts_ms[i]``, ``values[i]``)."""

    labels: list[Labels]
    index: np.ndarray
    ts_ms: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ms)

    def samples(self) -> list[Sample]:
        keys = self.labels
        owners = [keys[i] for i in self.index.tolist()]
        return list(map(Sample, owners, self.ts_ms.tolist(), self.values.tolist()))


def columns_of(batch: list[Sample]) -> Columns:
    """``batch`` as columns, each distinct label set once."""
    index: dict[Labels, int] = {}
    idx = np.fromiter((index.setdefault(s.labels, len(index)) for s in batch), np.uint32, len(batch))
    ts = np.fromiter((s.ts_ms for s in batch), np.int64, len(batch))
    values = np.fromiter((s.value for s in batch), np.float64, len(batch))
    return Columns(list(index), idx, ts, values)


def encode_columns(columns: Columns) -> bytes:
    """The untagged payload of ``columns``."""
    n = len(columns)
    labels = json.dumps(columns.labels, ensure_ascii=False).encode()
    return b"".join(
        (
            struct.pack("<II", len(labels), n),
            labels,
            np.asarray(columns.index, np.uint32).tobytes(),
            np.asarray(columns.ts_ms, np.int64).tobytes(),
            np.asarray(columns.values, np.float64).tobytes(),
        )
    )


def tagged(kind: int, samples: int, data: bytes) -> bytes:
    """A payload of another ``kind`` (> 0) than the columns one, decoded by whoever wrote it."""
    return _TAG.pack(0, kind, samples) + data


def payload_kind(payload: bytes) -> tuple[int, memoryview]:
    """(kind, data) of a payload: ``COLUMNS_KIND`` and the whole payload, or a tagged kind and its data."""
    first, kind, _ = _TAG.unpack_from(payload)
    if first == 0:
        return kind, memoryview(payload)[_TAG.size :]
    return COLUMNS_KIND, memoryview(payload)


def payload_samples(payload: bytes) -> int:
    """How many samples a payload holds, of any kind, without decoding it."""
    first, second, third = _TAG.unpack_from(payload)
    return third if first == 0 else second


def frame(payload: bytes) -> bytes:
    """One record: length, CRC, payload."""
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def encode_records(batch: list[Sample]) -> bytes:
    """One framed record holding ``batch``."""
    return frame(encode_columns(columns_of(batch)))


def decode_columns(payload: bytes | memoryview) -> Columns:
    """The columns of an untagged payload."""
    n_labels, n = struct.unpack_from("<II", payload)
    pos = 8 + n_labels
    keys = [tuple((k, v) for k, v in pairs) for pairs in json.loads(bytes(payload[8:pos]))]
    idx = np.frombuffer(payload, np.uint32, n, pos)
    ts = np.frombuffer(payload, np.int64, n, pos + 4 * n)
    values = np.frombuffer(payload, np.float64, n, pos + 12 * n)
    return Columns(keys, idx, ts, values)


def read_payloads(data: bytes, source: str = "") -> Iterator[bytes]:
    """The payloads in a segment's bytes; stops (and logs) at a torn or corrupt record."""
    pos = 0
    while pos < len(data):
        if pos + _HEADER.size > len(data):
            logger.warning("buffer {}: torn record header at byte {}, discarded", source, pos)
            return
        length, crc = _HEADER.unpack_from(data, pos)
        payload = data[pos + _HEADER.size : pos + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            logger.warning("buffer {}: torn or corrupt record at byte {}, discarded", source, pos)
            return
        yield payload
        pos += _HEADER.size + length


def read_records(data: bytes, source: str = "") -> Iterator[list[Sample]]:
    """The batches in a segment's bytes (untagged payloads); stops (and logs) at a torn or corrupt record."""
    for payload in read_payloads(data, source):
        yield decode_columns(payload).samples()


class SegmentQueue:
    """Ordered segments in ``folder``, at most ``max_bytes`` of them; full → oldest dropped and counted.

    ``queue.append(batch)`` then ``queue.seal()``; ``queue.oldest()`` → (path, samples);
    ``queue.remove(path)`` once sent. Survives restarts: a left-over ``open.wal`` is sealed on open.
    """

    def __init__(self, folder: Path, max_bytes: int = 256 << 20, fsync: bool = False) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.fsync = fsync
        folder.mkdir(parents=True, exist_ok=True)
        self.dropped_samples = 0
        self.open_samples = 0
        self.open_bytes = 0
        self._open_path = folder / _OPEN
        self._open_file = None
        self._sizes: dict[Path, int] = {}
        sealed = self.sealed()
        self._next_seq = (int(sealed[-1].name.split("-")[0]) + 1) if sealed else 0
        if self._open_path.exists():
            data = self._open_path.read_bytes()
            self.open_samples = sum(map(payload_samples, read_payloads(data, str(self._open_path))))
            self.seal()
        self._sizes = {p: p.stat().st_size for p in self.sealed()}
        self._enforce_bound()

    def sealed(self) -> list[Path]:
        """Sealed segment files, oldest first."""
        return sorted(self.folder.glob("*.seg"))

    @property
    def pending_samples(self) -> int:
        return self.open_samples + sum(_samples_in(p) for p in self.sealed())

    @property
    def bytes(self) -> int:
        """Bytes on disk: sealed segments and the open one."""
        return sum(self._sizes.values()) + self.open_bytes

    def append(self, batch: list[Sample]) -> None:
        """Add a batch to the open segment (on disk when this returns; a process kill keeps it)."""
        self.append_record(encode_records(batch), len(batch))

    def append_record(self, record: bytes, samples: int) -> None:
        """Add a framed record (``frame``) of ``samples`` samples to the open segment, written (not
        fsynced) when this returns."""
        if self._open_file is None:
            self._open_file = open(self._open_path, "ab")  # noqa: SIM115 - kept open between appends
        self._open_file.write(record)
        self._open_file.flush()
        self.open_samples += samples
        self.open_bytes += len(record)

    def seal(self) -> Path | None:
        """Close the open segment into the queue; drops the oldest segments if over ``max_bytes``."""
        if self._open_file is not None:
            if self.fsync:
                os.fsync(self._open_file.fileno())
            self._open_file.close()
            self._open_file = None
        if not self._open_path.exists():
            return None
        if self.open_samples == 0:
            self._open_path.unlink()
            self.open_bytes = 0
            return None
        path = self.folder / f"{self._next_seq:020d}-{self.open_samples}.seg"
        os.replace(self._open_path, path)
        self._next_seq += 1
        self.open_samples = 0
        self.open_bytes = 0
        self._sizes[path] = path.stat().st_size
        self._enforce_bound()
        return path

    def _enforce_bound(self) -> None:
        while sum(self._sizes.values()) > self.max_bytes and len(self._sizes) > 1:
            oldest = min(self._sizes)
            lost = _samples_in(oldest)
            oldest.unlink(missing_ok=True)
            del self._sizes[oldest]
            self.dropped_samples += lost
            logger.error(
                "export buffer over {} bytes: dropped oldest segment, {} samples", self.max_bytes, lost
            )

    def oldest(self) -> tuple[Path, list[Sample]] | None:
        """The oldest sealed segment and its samples, or None when the queue is empty."""
        for path in self.sealed():
            samples = [s for batch in read_records(path.read_bytes(), str(path)) for s in batch]
            return path, samples
        return None

    def oldest_payloads(self) -> tuple[Path, list[bytes]] | None:
        """The oldest sealed segment and its payloads (any kind), or None when the queue is empty."""
        for path in self.sealed():
            return path, list(read_payloads(path.read_bytes(), str(path)))
        return None

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._sizes.pop(path, None)

    def close(self) -> None:
        if self._open_file is not None:
            self._open_file.close()
            self._open_file = None


def _samples_in(path: Path) -> int:
    return int(path.stem.split("-")[1])
