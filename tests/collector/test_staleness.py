"""Staleness markers: vanished series get Prometheus' stale NaN at the next scrape's timestamp."""

from __future__ import annotations

import asyncio
from typing import Any

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from model.series import Sample, is_stale_nan


def _stale(batch: list[Sample]) -> list[str]:
    return sorted(f"{s.name}{dict(s.labels).get('x', '')}" for s in batch if is_stale_nan(s.value))


def _scrapes(http_stub: Any, canned: Any, bodies: list[bytes | None], **scrape: Any) -> list[list[Sample]]:
    """Scrape once per body; None = the target answers 500."""

    async def go() -> list[list[Sample]]:
        async with http_stub({}) as server:
            sink = ListConsumer()
            target = TargetConfig(host="127.0.0.1", port=server.port, allowed_ports=(server.port,))
            clock = iter(range(1000, 100000, 1000))
            sidecar = Sidecar(ScrapeConfig(**scrape), target, sink, clock=lambda: next(clock))
            for body in bodies:
                server.routes["/metrics"] = canned(body) if body is not None else canned(b"", status=500)
                await sidecar.scrape_once()
            await sidecar.stop(mark_stale=True)
            return sink.batches

    return asyncio.run(go())


def test_vanished_series_is_marked_once(http_stub: Any, canned: Any) -> None:
    batches = _scrapes(http_stub, canned, [b'a{x="1"} 1\na{x="2"} 1\n', b'a{x="1"} 2\n', b'a{x="1"} 3\n'])
    assert _stale(batches[0]) == []
    assert _stale(batches[1]) == ["a2"]
    [marker] = [s for s in batches[1] if is_stale_nan(s.value)]
    assert marker.ts_ms == 2_000_000
    assert _stale(batches[2]) == []


def test_failed_scrape_marks_everything_but_health(http_stub: Any, canned: Any) -> None:
    batches = _scrapes(http_stub, canned, [b"a 1\nb 2\n", None])
    assert _stale(batches[1]) == ["a", "b"]
    assert [s.value for s in batches[1] if s.name == "up"] == [0.0]


def test_series_with_own_timestamps_are_not_marked(http_stub: Any, canned: Any) -> None:
    batches = _scrapes(http_stub, canned, [b"a 1 1700000000000\nb 1\n", b"c 1\n"])
    assert _stale(batches[1]) == ["b"]


def test_stop_can_mark_the_last_scrape_stale(http_stub: Any, canned: Any) -> None:
    batches = _scrapes(http_stub, canned, [b"a 1\n"])
    assert len(batches) == 2
    assert "a" in _stale(batches[1])
    assert "up" in _stale(batches[1])


def test_markers_can_be_turned_off(http_stub: Any, canned: Any) -> None:
    batches = _scrapes(http_stub, canned, [b"a 1\nb 2\n", b"a 1\n"], stale_markers=False)
    assert all(_stale(b) == [] for b in batches[:2])
