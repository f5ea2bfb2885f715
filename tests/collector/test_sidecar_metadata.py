"""The sidecar's metadata: what a target's TYPE/HELP/UNIT say reaches the sink, only when it changed
or every resend period, never from a failed scrape; a failing sink is retried at the next scrape."""

from __future__ import annotations

import asyncio
from typing import Any

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from collector.metadata import MetadataTracker
from model.metadata import FamilyMetadata, MetadataRecord

EXPOSITION = b"""# HELP req_total Requests served.
# TYPE req_total counter
req_total 3
# HELP queue_depth Requests waiting.
# TYPE queue_depth gauge
queue_depth 1
bare_metric 2
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sink:
    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[MetadataRecord]] = []
        self.fail = fail

    async def __call__(self, records: list[MetadataRecord]) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.batches.append(records)


def _sidecar(port: int, sink: Sink, clock: Clock) -> Sidecar:
    target = TargetConfig(
        host="127.0.0.1", port=port, allowed_ports=(port,), service_id="svc", project_id="p1"
    )
    return Sidecar(ScrapeConfig(), target, ListConsumer(), metadata=sink, monotonic=clock)


def test_metadata_ships_when_new_changed_or_due(http_stub: Any, canned: Any) -> None:
    sink, clock = Sink(), Clock()

    async def go() -> None:
        async with http_stub({"/metrics": canned(EXPOSITION)}) as server:
            sidecar = _sidecar(server.port, sink, clock)
            await sidecar.scrape_once()
            await sidecar.scrape_once()  # nothing changed: nothing shipped
            server.routes["/metrics"] = canned(EXPOSITION.replace(b"Requests waiting.", b"Queued requests."))
            clock.now += 10
            await sidecar.scrape_once()
            server.routes["/metrics"] = canned(b"nope", status=500)
            await sidecar.scrape_once()  # a failed scrape says nothing about metadata
            server.routes["/metrics"] = canned(EXPOSITION.replace(b"Requests waiting.", b"Queued requests."))
            clock.now += 600
            await sidecar.scrape_once()  # the periodic full resend
            await sidecar.stop()

    asyncio.run(go())
    shipped = [[(r.family.metric, r.family.help) for r in batch] for batch in sink.batches]
    assert shipped == [
        [("req_total", "Requests served."), ("queue_depth", "Requests waiting.")],
        [("queue_depth", "Queued requests.")],
        [("req_total", "Requests served."), ("queue_depth", "Queued requests.")],
    ]
    first = sink.batches[0][0]
    assert (first.project_id, first.service_id, first.family.type) == ("p1", "svc", "counter")


def test_a_failing_sink_is_retried_and_never_fails_the_scrape(http_stub: Any, canned: Any) -> None:
    sink, clock = Sink(fail=1), Clock()

    async def go() -> list[float]:
        async with http_stub({"/metrics": canned(EXPOSITION)}) as server:
            sidecar = _sidecar(server.port, sink, clock)
            ups = []
            for _ in range(2):
                batch = await sidecar.scrape_once()
                ups += [s.value for s in batch if s.name == "up"]
            await sidecar.stop()
            return ups

    assert asyncio.run(go()) == [1.0, 1.0]
    assert [len(b) for b in sink.batches] == [2]


def test_tracker_forgets_families_a_target_dropped_at_the_full_resend() -> None:
    clock = Clock()
    tracker = MetadataTracker(resend_s=60, clock=clock)
    a, b = FamilyMetadata("a", "gauge", "A", ""), FamilyMetadata("b", "gauge", "B", "")
    due, full = tracker.due([a, b])
    assert (due, full) == ([a, b], True)
    tracker.shipped(due, full)
    assert tracker.due([a, b]) == ([], False)
    clock.now += 60
    due, full = tracker.due([a])
    tracker.shipped(due, full)
    assert tracker.due([a, b]) == ([b], False)  # b came back: new again
