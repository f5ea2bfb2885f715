"""collector.sidecar: one scrape end to end, health series, labels, the loop, stop()."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from collector.normalise import with_identity
from model.series import Sample

IDENTITY = {
    "service_id": "svc-1",
    "service_name": "chat",
    "group_id": "g-1",
    "project_id": "p-1",
    "instance_name": "chat-0",
    "source": "chat-0-pod",
}
CLOCK_S = 1_700_000_000.5


def _target(port: int, engine: str = "generic", **extra: Any) -> TargetConfig:
    return TargetConfig(
        host="127.0.0.1", port=port, engine=engine, allowed_ports=(port,), **IDENTITY, **extra
    )


def _series(batch: list[Sample], name: str) -> list[dict[str, str]]:
    return [dict(s.labels) for s in batch if s.name == name]


def _value(batch: list[Sample], name: str, **labels: str) -> float:
    hits = [s.value for s in batch if s.name == name and labels.items() <= dict(s.labels).items()]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


async def _scrape(port: int, engine: str = "generic", **scrape: Any) -> list[Sample]:
    sink = ListConsumer()
    sidecar = Sidecar(ScrapeConfig(**scrape), _target(port, engine), sink, clock=lambda: CLOCK_S)
    try:
        batch = await sidecar.scrape_once()
    finally:
        await sidecar.stop()
    assert sink.batches == [batch]
    return batch


def test_captured_vllm_scrape(http_stub: Any, canned: Any, vllm_capture: str) -> None:
    async def go() -> list[Sample]:
        async with http_stub({"/metrics": canned(vllm_capture.encode())}) as server:
            return await _scrape(server.port, "vllm")

    batch = asyncio.run(go())
    assert _value(batch, "up") == 1.0
    assert _value(batch, "infersight_scrape_body_bytes") == len(vllm_capture.encode())
    assert _value(batch, "infer_service_first_token_cost_sum") == pytest.approx(313.26723098754883)
    # originals are kept under their own names, with identity labels
    assert _value(batch, "vllm:time_to_first_token_seconds_sum") == pytest.approx(0.31326723098754883)
    for sample in batch:
        labels = dict(sample.labels)
        assert labels.items() >= IDENTITY.items(), labels
        assert sample.ts_ms == 1_700_000_000_500
    # vLLM's own `source` label collides with the pod identity label: kept as exported_source
    sources = _series(batch, "vllm:prompt_tokens_by_source_total")
    assert {s["exported_source"] for s in sources} == {
        "local_compute",
        "local_cache_hit",
        "external_kv_transfer",
    }
    assert {s["source"] for s in sources} == {"chat-0-pod"}
    exposed = sum(1 for line in vllm_capture.splitlines() if line and not line.startswith("#"))
    assert _value(batch, "scrape_samples_scraped") == exposed


def test_guide_example_keeps_its_millisecond_timestamps(http_stub: Any, canned: Any) -> None:
    body = (
        b"# HELP http_requests_total The total number of HTTP requests.\n"
        b"# TYPE http_requests_total gauge\n"
        b'html_http_requests_total{method="post",code="200"} 1656 1686660980680\n'
        b'html_http_requests_total{method="post",code="400"} 2 1686660980681\n'
    )

    async def go() -> list[Sample]:
        async with http_stub({"/metrics": canned(body)}) as server:
            return await _scrape(server.port)

    batch = asyncio.run(go())
    stamps = sorted(s.ts_ms for s in batch if s.name == "html_http_requests_total")
    assert stamps == [1686660980680, 1686660980681]
    assert _value(batch, "up") == 1.0


def test_connection_refused_gives_up_zero() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    batch = asyncio.run(_scrape(port))
    assert _value(batch, "up") == 0.0
    assert _value(batch, "infersight_scrape_errors_total", reason="connection") == 1.0
    assert _value(batch, "infersight_scrape_errors_total", reason="timeout") == 0.0
    assert _value(batch, "scrape_samples_scraped") == 0.0
    assert {s.name for s in batch} == {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "infersight_scrape_body_bytes",
        "infersight_scrape_errors_total",
    }


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"body": b"a 1\n" * 9000}, "body_too_large"),
        ({"body": b"a 1\n", "delay_s": 1.0}, "timeout"),
        ({"body": b"a{ 1\n"}, "parse"),
        ({"body": b"oops", "status": 503}, "http_status"),
    ],
)
def test_failed_scrape_gives_up_zero_and_counts_the_reason(
    http_stub: Any, canned: Any, options: dict[str, Any], reason: str
) -> None:
    async def go() -> list[Sample]:
        async with http_stub({"/metrics": canned(**options)}) as server:
            return await _scrape(server.port, timeout_s=0.3)

    batch = asyncio.run(go())
    assert _value(batch, "up") == 0.0
    assert _value(batch, "infersight_scrape_errors_total", reason=reason) == 1.0


def test_errors_total_is_a_counter_across_scrapes() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def go() -> list[list[Sample]]:
        sink = ListConsumer()
        sidecar = Sidecar(ScrapeConfig(), _target(port), sink)
        for _ in range(3):
            await sidecar.scrape_once()
        await sidecar.stop()
        return sink.batches

    batches = asyncio.run(go())
    assert [_value(b, "infersight_scrape_errors_total", reason="connection") for b in batches] == [
        1.0,
        2.0,
        3.0,
    ]


def test_role_label_is_added_when_set(http_stub: Any, canned: Any) -> None:
    async def go() -> list[Sample]:
        async with http_stub({"/metrics": canned(b"a 1\n")}) as server:
            sidecar = Sidecar(ScrapeConfig(), _target(server.port, role="prefill"), ListConsumer())
            batch = await sidecar.scrape_once()
            await sidecar.stop()
            return batch

    batch = asyncio.run(go())
    assert all(dict(s.labels)["role"] == "prefill" for s in batch)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"source": "x"}, {"exported_source": "x", "source": "pod"}),
        (
            {"source": "x", "exported_source": "y"},
            {"exported_exported_source": "x", "exported_source": "y", "source": "pod"},
        ),
        ({"model_name": "m"}, {"model_name": "m", "source": "pod"}),
    ],
)
def test_label_collisions_as_prometheus_honor_labels_false(
    labels: dict[str, str], expected: dict[str, str]
) -> None:
    assert with_identity(labels, {"source": "pod"}) == expected


def test_run_scrapes_every_interval_until_stopped(http_stub: Any, canned: Any) -> None:
    async def go() -> ListConsumer:
        async with http_stub({"/metrics": canned(b"a 1\n")}) as server:
            sink = ListConsumer()
            sidecar = Sidecar(ScrapeConfig(interval_s=0.1, timeout_s=0.1), _target(server.port), sink)
            task = asyncio.create_task(sidecar.run())
            await asyncio.sleep(0.55)
            await sidecar.stop()
            await sidecar.stop()
            await asyncio.wait_for(task, 1.0)
            return sink

    sink = asyncio.run(go())
    assert 3 <= len(sink.batches) <= 7
    stamps = [b[0].ts_ms for b in sink.batches]
    # aligned on interval boundaries (to the clock's ms, plus scheduling jitter)
    assert all(ts % 100 < 50 for ts in stamps), stamps


def test_run_survives_a_failing_consumer(http_stub: Any, canned: Any) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        async def consume(self, batch: list[Sample]) -> None:
            self.calls += 1
            raise RuntimeError("store down")

    async def go() -> int:
        async with http_stub({"/metrics": canned(b"a 1\n")}) as server:
            flaky = Flaky()
            sidecar = Sidecar(ScrapeConfig(interval_s=0.1, timeout_s=0.1), _target(server.port), flaky)
            task = asyncio.create_task(sidecar.run())
            await asyncio.sleep(0.35)
            await sidecar.stop()
            await task
            return flaky.calls

    assert asyncio.run(go()) >= 2


def test_stop_without_start_is_safe() -> None:
    async def go() -> None:
        sidecar = Sidecar(ScrapeConfig(), _target(8000), ListConsumer())
        await sidecar.stop()
        await sidecar.stop()

    asyncio.run(go())
