"""The buffered exporter: batches by size and age, disk buffer through outages and restarts, bounded."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import httpx
import pytest

from exporters.buffer import BufferedExporter
from exporters.errors import PermanentError, is_retryable
from exporters.segments import SegmentQueue, encode_records, read_records
from model.labels import to_labels
from model.series import STALE_NAN, Sample, is_stale_nan
from store.backend import StoreUnavailableError
from store.limits import counter_samples

_REQUEST = httpx.Request("POST", "http://server/api/v1/ingest")


class Sink:
    """Records what it received; refuses while ``down`` (retryable) or for ``refuse`` (permanent)."""

    def __init__(self) -> None:
        self.down = False
        self.refuse_value: float | None = None
        self.received: list[list[Sample]] = []

    async def send(self, batch: list[Sample]) -> None:
        if self.down:
            raise ConnectionError("store unreachable")
        if self.refuse_value is not None and any(s.value == self.refuse_value for s in batch):
            raise PermanentError("refused")
        self.received.append(batch)

    @property
    def samples(self) -> list[Sample]:
        return [s for b in self.received for s in b]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _batch(i: int, n: int = 3) -> list[Sample]:
    return [Sample(to_labels({"__name__": "m", "i": str(i)}), 1000 * i + k, float(k)) for k in range(n)]


def _exporter(sink: Sink, folder: Path, clock: Clock | None = None, **kwargs: object) -> BufferedExporter:
    options = {"max_batch_samples": 5, "max_batch_age_s": 1.0, "retry_interval_s": 0.0, **kwargs}
    return BufferedExporter(sink, folder, clock=clock or Clock(), **options)  # type: ignore[arg-type]


def test_batches_by_size(tmp_path: Path) -> None:
    sink = Sink()
    exporter = _exporter(sink, tmp_path)

    async def scenario() -> None:
        await exporter.consume(_batch(0))
        assert sink.received == []  # 3 < 5: still open
        await exporter.consume(_batch(1))

    asyncio.run(scenario())
    assert sink.received == [_batch(0) + _batch(1)]
    assert exporter.pending_samples == 0


def test_batches_by_age(tmp_path: Path) -> None:
    sink, clock = Sink(), Clock()
    exporter = _exporter(sink, tmp_path, clock)

    async def scenario() -> None:
        await exporter.consume(_batch(0))
        clock.now = 0.9
        await exporter.tick()
        assert sink.received == []
        clock.now = 1.0
        await exporter.tick()

    asyncio.run(scenario())
    assert sink.received == [_batch(0)]


def test_outage_buffers_on_disk_and_replays_in_order_once(tmp_path: Path) -> None:
    sink = Sink()
    exporter = _exporter(sink, tmp_path, max_batch_samples=3)

    async def scenario() -> None:
        sink.down = True
        for i in range(4):
            await exporter.consume(_batch(i))
        assert exporter.pending_samples == 12
        assert len(list(tmp_path.glob("*.seg"))) == 4
        sink.down = False
        await exporter.consume(_batch(4))

    asyncio.run(scenario())
    assert sink.received == [_batch(i) for i in range(5)]
    assert exporter.exported_samples == 15
    assert list(tmp_path.glob("*.seg")) == []


def test_restart_replays_what_the_killed_process_accepted(tmp_path: Path) -> None:
    sink = Sink()
    sink.down = True
    first = _exporter(sink, tmp_path, max_batch_samples=4)

    async def accept() -> None:
        for i in range(3):
            await first.consume(_batch(i))  # 9 samples: two sealed segments + one open

    asyncio.run(accept())  # no stop(): as if SIGKILLed; the open segment is still open.wal
    assert (tmp_path / "open.wal").exists()
    sink.down = False
    second = _exporter(sink, tmp_path, max_batch_samples=4)
    assert second.pending_samples == 9
    asyncio.run(second.flush())
    assert sink.samples == [s for i in range(3) for s in _batch(i)]


def test_torn_tail_is_discarded_and_the_rest_kept(tmp_path: Path) -> None:
    record = encode_records(_batch(0))
    (tmp_path / "open.wal").write_bytes(record + encode_records(_batch(1))[:-5])
    queue = SegmentQueue(tmp_path)
    assert queue.pending_samples == 3
    head = queue.oldest()
    assert head is not None
    assert head[1] == _batch(0)


def test_full_buffer_drops_oldest_and_counts(tmp_path: Path) -> None:
    sink = Sink()
    sink.down = True
    size = len(encode_records(_batch(0)))
    exporter = _exporter(sink, tmp_path, max_batch_samples=3, max_buffer_bytes=2 * size)

    async def scenario() -> None:
        for i in range(5):
            await exporter.consume(_batch(i))
        sink.down = False
        await exporter.flush()

    asyncio.run(scenario())
    assert exporter.dropped_samples == 9
    assert sink.received == [_batch(3), _batch(4)]


def test_permanent_refusal_drops_that_batch_only(tmp_path: Path) -> None:
    sink = Sink()
    sink.refuse_value = 99.0
    exporter = _exporter(sink, tmp_path, max_batch_samples=1)
    bad = [Sample(to_labels({"__name__": "m"}), 1, 99.0)]

    async def scenario() -> None:
        await exporter.consume(_batch(0))
        await exporter.consume(bad)
        await exporter.consume(_batch(1))

    asyncio.run(scenario())
    assert exporter.rejected_samples == 1
    assert sink.received == [_batch(0), _batch(1)]


def test_values_survive_disk_bit_for_bit() -> None:
    labels = to_labels({"__name__": "m", "v": "ü'\\\n"})
    batch = [Sample(labels, 1, math.nan), Sample(labels, 2, STALE_NAN), Sample(labels, 3, -math.inf)]
    (decoded,) = read_records(encode_records(batch))
    assert decoded[0].labels == labels
    assert math.isnan(decoded[0].value)
    assert not is_stale_nan(decoded[0].value)
    assert is_stale_nan(decoded[1].value)
    assert decoded[2].value == -math.inf


@pytest.mark.parametrize("twice", [False, True])
def test_stop_is_safe_without_start_and_twice(tmp_path: Path, twice: bool) -> None:
    sink = Sink()
    exporter = _exporter(sink, tmp_path)

    async def scenario() -> None:
        await exporter.consume(_batch(0))
        await exporter.stop()
        if twice:
            await exporter.stop()

    asyncio.run(scenario())
    assert sink.received == [_batch(0)]


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (StoreUnavailableError("down"), True),
        (httpx.ConnectError("refused"), True),
        (
            httpx.HTTPStatusError("503", request=_REQUEST, response=httpx.Response(503, request=_REQUEST)),
            True,
        ),
        (
            httpx.HTTPStatusError("429", request=_REQUEST, response=httpx.Response(429, request=_REQUEST)),
            True,
        ),
        (
            httpx.HTTPStatusError("400", request=_REQUEST, response=httpx.Response(400, request=_REQUEST)),
            False,
        ),
        (PermanentError("bad"), False),
        (ValueError("bad"), False),
    ],
)
def test_retryable_or_permanent(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable


def test_counts_become_samples(tmp_path: Path) -> None:
    exporter = _exporter(Sink(), tmp_path)
    asyncio.run(exporter.consume(_batch(0)))
    samples = counter_samples("infersight_export_samples_total", exporter.counts(), 5, source="pod-a")
    by_reason = {dict(s.labels)["reason"]: s.value for s in samples}
    assert by_reason == {"dropped_buffer_full": 0.0, "exported": 0.0, "pending": 3.0, "rejected": 0.0}
    assert dict(samples[0].labels)["source"] == "pod-a"
