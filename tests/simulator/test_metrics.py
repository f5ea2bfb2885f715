"""The simulator's /metrics: vLLM's names, labels and buckets, and agreement with ground truth."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simulator import SimulatorConfig, SimulatorServer
from simulator.metrics import ITL_BUCKETS_S, REQUEST_LATENCY_BUCKETS_S, TTFT_BUCKETS_S, build_1_2_5_buckets

CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "a b c d"}]}


async def _traffic(server: SimulatorServer, n: int, **extra: Any) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        await asyncio.gather(*(client.post("/v1/chat/completions", json={**CHAT, **extra}) for _ in range(n)))


def _run(config: SimulatorConfig, n: int, accept: str = "", **extra: Any) -> tuple[str, str, list[Any]]:
    async def go() -> tuple[str, str, list[Any]]:
        server = SimulatorServer(config)
        await server.start()
        try:
            await _traffic(server, n, **extra)
            async with httpx.AsyncClient(base_url=server.url) as client:
                response = await client.get("/metrics", headers={"Accept": accept} if accept else {})
                served = (await client.get("/sim/served")).json()
            assert served == [s.to_json() for s in server.served]
            return response.text, response.headers["content-type"], list(server.served)
        finally:
            await server.stop()

    return asyncio.run(go())


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    hits = [v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


def _les(samples: dict[Any, float], name: str) -> list[float]:
    return sorted(float(dict(ls)["le"]) for (n, ls) in samples if n == name + "_bucket")


def test_names_labels_and_buckets_follow_vllm() -> None:
    text, content_type, _ = _run(SimulatorConfig(max_model_len=4096), 2, stream=True)
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = _samples(text)
    for (name, labels), _ in samples.items():
        if name.startswith("vllm:"):
            assert dict(labels)["model_name"] == "sim-model"
            assert dict(labels)["engine"] == "0"
    assert _les(samples, "vllm:time_to_first_token_seconds") == [*TTFT_BUCKETS_S, float("inf")]
    assert len(TTFT_BUCKETS_S) == 22
    assert len(ITL_BUCKETS_S) == 19
    assert len(REQUEST_LATENCY_BUCKETS_S) == 21
    assert _les(samples, "vllm:inter_token_latency_seconds") == [*ITL_BUCKETS_S, float("inf")]
    assert _les(samples, "vllm:time_per_output_token_seconds") == [*ITL_BUCKETS_S, float("inf")]
    assert _les(samples, "vllm:e2e_request_latency_seconds") == [*REQUEST_LATENCY_BUCKETS_S, float("inf")]
    assert _les(samples, "vllm:request_prompt_tokens") == [*build_1_2_5_buckets(4096), float("inf")]
    assert build_1_2_5_buckets(4096)[:4] == (1.0, 2.0, 5.0, 10.0)
    assert _value(samples, "vllm:request_success_total", finished_reason="stop") == 2.0
    assert (
        _value(samples, "http_requests_total", handler="/v1/chat/completions", status="2xx", method="POST")
        == 2.0
    )
    assert _les(samples, "http_request_duration_seconds") == [0.1, 0.5, 1.0, float("inf")]
    assert "_created" not in text


def test_exposition_families_match_the_captured_vllm(testdata_dir: Path) -> None:
    captured = (testdata_dir / "captured/engines/vllm/vllm_datadog_fixture_opt-125m.prom").read_text()
    captured_types = {f.name: f.type for f in text_string_to_metric_families(captured)}
    text, _, _ = _run(SimulatorConfig(), 1)
    ours = {f.name: f.type for f in text_string_to_metric_families(text) if f.name.startswith("vllm:")}
    for name, kind in ours.items():
        assert captured_types.get(name) == kind, name


def test_openmetrics_when_asked() -> None:
    text, content_type, _ = _run(SimulatorConfig(), 1, accept="application/openmetrics-text;version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")


def test_histograms_agree_with_ground_truth() -> None:
    text, _, served = _run(SimulatorConfig(seed=11), 6, stream=True)
    samples = _samples(text)
    ttfts = [s.ttft_s for s in served]
    gaps = [g for s in served for g in s.itl_s]
    assert _value(samples, "vllm:time_to_first_token_seconds_count") == len(served) == 6
    assert _value(samples, "vllm:time_to_first_token_seconds_sum") == pytest.approx(sum(ttfts), rel=1e-12)
    assert _value(samples, "vllm:inter_token_latency_seconds_count") == len(gaps)
    assert _value(samples, "vllm:inter_token_latency_seconds_sum") == pytest.approx(sum(gaps), rel=1e-9)
    assert _value(samples, "vllm:e2e_request_latency_seconds_sum") == pytest.approx(
        sum(s.e2e_s for s in served)
    )
    assert _value(samples, "vllm:generation_tokens_total") == sum(s.completion_tokens for s in served)
    assert _value(samples, "vllm:prompt_tokens_total") == sum(s.prompt_tokens for s in served) == 6 * 4
    assert _value(samples, "vllm:num_requests_running") == 0.0
    # every TTFT lands in the bucket its measured value says
    bound = 0.1
    assert _value(samples, "vllm:time_to_first_token_seconds_bucket", le=str(bound)) == sum(
        t <= bound for t in ttfts
    )


def test_requests_beyond_capacity_wait() -> None:
    async def go() -> tuple[float, float]:
        server = SimulatorServer(SimulatorConfig(max_num_seqs=1, ttft_median_ms=100, ttft_sigma=0))
        await server.start()
        try:
            traffic = asyncio.create_task(_traffic(server, 3))
            await asyncio.sleep(0.05)
            async with httpx.AsyncClient(base_url=server.url) as client:
                samples = _samples((await client.get("/metrics")).text)
            await traffic
            return _value(samples, "vllm:num_requests_running"), _value(samples, "vllm:num_requests_waiting")
        finally:
            await server.stop()

    assert asyncio.run(go()) == (1.0, 2.0)


def test_errors_are_counted_by_status_class() -> None:
    text, _, served = _run(SimulatorConfig(error_rate=1.0), 3)
    samples = _samples(text)
    assert _value(samples, "http_requests_total", handler="/v1/chat/completions", status="5xx") == 3.0
    assert [s.status for s in served] == [500, 500, 500]
    assert not any(n == "vllm:time_to_first_token_seconds_count" and v for (n, _), v in samples.items())
