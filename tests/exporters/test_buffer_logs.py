"""The buffered exporter's log during an outage of its destination: one warning when sends begin to
fail, a summary at most every minute however often it retries, one INFO line when sending works
again. The clock is driven by the test; the lines come from a sink added to loguru."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from exporters.buffer import BufferedExporter
from model.labels import to_labels
from model.series import Sample


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FlakySender:
    def __init__(self) -> None:
        self.down = True
        self.sent: list[Sample] = []

    async def send(self, batch: list[Sample]) -> None:
        if self.down:
            raise ConnectionError("connection refused")
        self.sent.extend(batch)


@pytest.fixture
def lines() -> Iterator[list[str]]:
    found: list[str] = []
    sink = logger.add(lambda m: found.append(str(m).rstrip("\n")), level="INFO", format="{level} | {message}")
    yield found
    logger.remove(sink)


def test_an_outage_of_the_destination_is_warned_once_then_summarised(
    tmp_path: Path, lines: list[str]
) -> None:
    clock, sender = Clock(), FlakySender()
    exporter = BufferedExporter(sender, tmp_path / "buffer", clock=clock, retry_interval_s=1.0)
    sample = Sample(to_labels({"__name__": "up"}), 1000, 1.0)

    async def go() -> None:
        await exporter.consume([sample])
        for second in range(0, 180):  # retried every second for three minutes
            clock.now = float(second)
            await exporter.flush(force=False)
            await exporter.tick()
        sender.down = False
        clock.now = 200.0
        assert await exporter.flush(force=True)
        await exporter.stop()

    asyncio.run(go())
    warnings = [line for line in lines if line.startswith("WARNING")]
    # sealed at 1 s (the batch age), first send failed then; summaries at 61 and 121 s; not 178 more
    assert len(warnings) == 3, warnings
    assert "destination unreachable, 1 samples buffered on disk: connection refused" in warnings[0]
    assert "still failing" in warnings[1]
    recovered = [line for line in lines if line.startswith("INFO") and "recovered" in line]
    assert len(recovered) == 1
    assert "recovered after 199 s; 179 sends failed" in recovered[0]
    assert sender.sent == [sample]
