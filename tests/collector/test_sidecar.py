"""collector.sidecar: one scrape end to end, health series, labels, the loop, stop()."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from collector.normalise import with_identity
from collector.sidecar import ERROR_REASONS
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
        "infersight_target_restarts_total",
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


# --- hostile bodies: every scrape reports up and a reason, the loop goes on ----------------------

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TTFT = "vllm:time_to_first_token_seconds"


async def _scrape_body(
    http_stub: Any, canned: Any, body: bytes, engine: str, content_type: str
) -> list[Sample]:
    async with http_stub({"/metrics": canned(body, content_type=content_type)}) as server:
        return await _scrape(server.port, engine)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"a 1 Inf\n", "text/plain"),  # an Inf timestamp (was: OverflowError out of the parser)
        (b"a Inf\nb 1 -Inf\n", "text/plain"),
        (b"# TYPE a counter\na_total " + b"9" * 400 + b"\n# EOF\n", OPENMETRICS),  # was: OverflowError
        (b"a " + b"9" * 400 + b"\n", "text/plain"),
    ],
)
@pytest.mark.parametrize("engine", ["vllm", "generic"])
def test_numbers_out_of_range_fail_the_scrape_with_reason_parse(
    http_stub: Any, canned: Any, body: bytes, content_type: str, engine: str
) -> None:
    batch = asyncio.run(_scrape_body(http_stub, canned, body, engine, content_type))
    assert _value(batch, "up") == 0.0
    assert _value(batch, "infersight_scrape_errors_total", reason="parse") == 1.0
    assert _value(batch, "infersight_scrape_body_bytes") == len(body)


def test_le_abc_keeps_the_scrape_and_counts_the_dropped_family(http_stub: Any, canned: Any) -> None:
    # was: ValueError out of the vLLM adapter, no up sample, nothing counted
    body = (
        f'# TYPE {TTFT} histogram\n{TTFT}_bucket{{le="abc"}} 1\n{TTFT}_count 1\n{TTFT}_sum 1\n'
        "# TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total 7\n"
    ).encode()
    batch = asyncio.run(_scrape_body(http_stub, canned, body, "vllm", "text/plain"))
    assert _value(batch, "up") == 1.0
    assert _value(batch, "infersight_scrape_errors_total", reason="adapter") == 1.0
    assert _value(batch, "infersight_scrape_errors_total", reason="parse") == 0.0
    assert _value(batch, f"{TTFT}_bucket", le="abc") == 1.0  # the target's own series are kept
    assert _value(batch, "infer_service_token_count") == 7.0  # and the valid families mapped
    assert not _series(batch, "infer_service_first_token_cost_bucket")


def test_special_values_are_scraped_and_mapped(http_stub: Any, canned: Any) -> None:
    body = (
        f'# TYPE {TTFT} histogram\n{TTFT}_bucket{{le="0.1"}} NaN\n{TTFT}_bucket{{le="+Inf"}} +Inf\n'
        f"{TTFT}_count Inf\n{TTFT}_sum 1e308\nvllm:num_requests_running NaN\n"
    ).encode()
    batch = asyncio.run(_scrape_body(http_stub, canned, body, "vllm", "text/plain"))
    assert _value(batch, "up") == 1.0
    assert _value(batch, "infer_service_first_token_cost_sum") == float("inf")
    assert _value(batch, "infer_service_first_token_cost_bucket", le="+Inf") == float("inf")
    assert sum(_value(batch, "infersight_scrape_errors_total", reason=r) for r in ERROR_REASONS) == 0


def test_duplicates_and_a_targets_own_up_keep_ours(http_stub: Any, canned: Any) -> None:
    body = b'up 5\na{x="1"} 1\na{x="1"} 2\ninfersight_scrape_errors_total{reason="parse"} 9\nb 3\n'
    batch = asyncio.run(_scrape_body(http_stub, canned, body, "generic", "text/plain"))
    assert _value(batch, "up") == 1.0
    assert _value(batch, "a", x="1") == 1.0  # the first one wins
    assert _value(batch, "infersight_scrape_errors_total", reason="parse") == 0.0
    assert _value(batch, "infersight_scrape_errors_total", reason="duplicate_series") == 1.0
    assert _value(batch, "b") == 3.0
    labels = [s.labels for s in batch]
    assert len(labels) == len(set(labels))


def test_a_target_cannot_add_series_under_the_health_names(http_stub: Any, canned: Any) -> None:
    body = (
        b'infersight_scrape_errors_total{reason="abc"} NaN\nup{job="x"} 0\n'
        b'scrape_duration_seconds{x="1"} 9\nkept 1\n'
    )
    batch = asyncio.run(_scrape_body(http_stub, canned, body, "generic", "text/plain"))
    assert all(labels["reason"] != "abc" for labels in _series(batch, "infersight_scrape_errors_total"))
    assert len(_series(batch, "up")) == 1
    assert _value(batch, "up") == 1.0
    assert len(_series(batch, "scrape_duration_seconds")) == 1
    assert _value(batch, "infersight_scrape_errors_total", reason="duplicate_series") == 1.0
    assert _value(batch, "kept") == 1.0


def test_run_goes_on_after_hostile_bodies(http_stub: Any, canned: Any) -> None:
    bodies = [b"a 1 Inf\n", b"\xff\xfe", b'h_bucket{le="abc"} 1\n', b"a 1\n"]

    async def go() -> list[Sample]:
        async with http_stub({"/metrics": canned(bodies[0])}) as server:
            sink = ListConsumer()
            sidecar = Sidecar(ScrapeConfig(interval_s=0.05, timeout_s=0.05), _target(server.port), sink)
            task = asyncio.create_task(sidecar.run())
            for body in bodies[1:]:
                seen = len(sink.batches)
                while len(sink.batches) == seen:
                    await asyncio.sleep(0.01)
                server.routes["/metrics"] = canned(body)
            # the loop still runs: wait for a good scrape of the last body (pytest-timeout bounds it)
            seen = len(sink.batches)
            while len(sink.batches) <= seen + 1 or _value(sink.batches[-1], "up") != 1.0:
                await asyncio.sleep(0.01)
            await sidecar.stop()
            await task
            return sink.batches[-1]

    last = asyncio.run(go())
    assert _value(last, "a") == 1.0
    assert _value(last, "infersight_scrape_errors_total", reason="parse") >= 2.0  # Inf ts, not UTF-8
