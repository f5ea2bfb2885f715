"""Batches that fail to export are kept and replayed in order, once each; overflow drops the oldest."""

from __future__ import annotations

import asyncio

from exporters.retry import RetryingExporter
from model.labels import to_labels
from model.series import Sample


class FlakySink:
    """Records what it received; refuses while ``down`` is set."""

    def __init__(self) -> None:
        self.down = False
        self.received: list[list[Sample]] = []

    async def send(self, batch: list[Sample]) -> None:
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("store unreachable")
        self.received.append(batch)


def _batch(i: int, n: int = 3) -> list[Sample]:
    return [Sample(to_labels({"__name__": "m", "i": str(i)}), 1000 * i + k, float(k)) for k in range(n)]


def test_outage_then_replay_in_order_without_duplicates() -> None:
    async def scenario() -> tuple[FlakySink, RetryingExporter]:
        sink = FlakySink()
        exporter = RetryingExporter(sink)
        await exporter.consume(_batch(0))
        sink.down = True
        await exporter.consume(_batch(1))
        await exporter.consume(_batch(2))
        assert exporter.pending_samples == 6
        sink.down = False
        await exporter.consume(_batch(3))
        return sink, exporter

    sink, exporter = asyncio.run(scenario())
    assert sink.received == [_batch(0), _batch(1), _batch(2), _batch(3)]
    assert exporter.pending_samples == 0
    assert exporter.exported_samples == 12


def test_concurrent_consumers_send_each_batch_once() -> None:
    async def scenario() -> FlakySink:
        sink = FlakySink()
        exporter = RetryingExporter(sink)
        await asyncio.gather(*(exporter.consume(_batch(i)) for i in range(20)))
        return sink

    sink = asyncio.run(scenario())
    assert sorted(b[0].ts_ms for b in sink.received) == [1000 * i for i in range(20)]


def test_overflow_drops_oldest_and_counts_it() -> None:
    async def scenario() -> tuple[FlakySink, RetryingExporter]:
        sink = FlakySink()
        sink.down = True
        exporter = RetryingExporter(sink, max_pending_samples=6)
        for i in range(4):
            await exporter.consume(_batch(i))
        sink.down = False
        await exporter.flush()
        return sink, exporter

    sink, exporter = asyncio.run(scenario())
    assert exporter.dropped_samples == 6
    assert sink.received == [_batch(2), _batch(3)]
