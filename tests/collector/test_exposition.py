"""The sidecar's own /metrics: what it computed, readable by prometheus-client's parser (as Prometheus)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
from prometheus_client.parser import text_string_to_metric_families

from collector.exposition import Exposition
from collector.pipeline import ListConsumer
from collector.proxy.stats import ProxyStats
from collector.proxy.timing import RequestObservation
from model.labels import METRIC_NAME, to_labels
from model.series import STALE_NAN, Sample


def _batch() -> list[Sample]:
    stats = ProxyStats({"service_id": "svc"})
    obs = RequestObservation(ts_s=0, method="POST", path="/v1/chat/completions", status=200, cost_ms=80.0)
    stats.observe(replace(obs, ttft_ms=20.0, per_token_ms=(5.0,), output_tokens=2))
    batch = stats.to_samples(ts_ms=1000, connections=1)
    batch.append(Sample(to_labels({METRIC_NAME: "ma_container_cpu_util", "service_id": "svc"}), 1000, 42.0))
    return batch


def _serve_and_get(exposition: Exposition, accept: str = "") -> httpx.Response:
    async def go() -> httpx.Response:
        port = await exposition.start("127.0.0.1", 0)
        try:
            async with httpx.AsyncClient() as client:
                headers = {"Accept": accept} if accept else {}
                return await client.get(f"http://127.0.0.1:{port}/metrics", headers=headers)
        finally:
            await exposition.stop()
            await exposition.stop()  # safe twice

    return asyncio.run(go())


def test_classic_histograms_counters_and_gauges() -> None:
    exposition = Exposition()
    sink = ListConsumer()
    exposition.next_consumer = sink
    batch = _batch()
    asyncio.run(exposition.consume(batch))
    assert sink.samples == batch  # passed on unchanged
    response = _serve_and_get(exposition)
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["infer_service_first_token_cost"].type == "histogram"
    assert families["infer_service_request"].type == "counter"
    assert families["ma_container_cpu_util"].type == "gauge"
    buckets = [s for s in families["infer_service_first_token_cost"].samples if s.name.endswith("_bucket")]
    assert [s.labels["le"] for s in buckets][-1] == "+Inf"
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)  # cumulative, in order
    total = families["infer_service_request"].samples[0]
    assert total.labels == {
        "code": "2xx",
        "method": "POST",
        "path": "/v1/chat/completions",
        "service_id": "svc",
    }


def test_openmetrics_is_negotiated() -> None:
    exposition = Exposition()
    exposition.update(_batch())
    response = _serve_and_get(exposition, "application/openmetrics-text; version=1.0.0")
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_stale_and_old_series_go_away() -> None:
    now = [1000.0]
    exposition = Exposition(max_age_s=60, clock=lambda: now[0])
    cpu = to_labels({METRIC_NAME: "ma_container_cpu_util"})
    mem = to_labels({METRIC_NAME: "ma_container_memory_util"})
    exposition.update([Sample(cpu, 0, 1.0), Sample(mem, 0, 2.0)])
    exposition.update([Sample(cpu, 0, STALE_NAN)])
    assert set(exposition.series) == {mem}
    now[0] += 61
    exposition.update([])
    assert exposition.series == {}
