"""The sidecar scraping a live simulator: guide series equal the simulator's ground truth."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from model.series import Sample
from simulator import ServedRequest, SimulatorConfig, SimulatorServer


def _value(batch: list[Sample], name: str, **labels: str) -> float:
    hits = [s.value for s in batch if s.name == name and labels.items() <= dict(s.labels).items()]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


async def _load(server: SimulatorServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        chat = {"model": "sim-model", "messages": [{"role": "user", "content": "a b c"}]}
        await asyncio.gather(
            *(client.post("/v1/chat/completions", json={**chat, "stream": i % 2 == 0}) for i in range(8)),
            client.post("/v1/completions", json={"model": "sim-model", "prompt": "x y"}),
            client.post("/v1/completions", json={"model": "nope", "prompt": "x y"}),
        )


def _scrape_live(config: SimulatorConfig) -> tuple[list[Sample], list[ServedRequest]]:
    async def go() -> tuple[list[Sample], list[ServedRequest]]:
        server = SimulatorServer(config)
        port = await server.start()
        try:
            await _load(server)
            target = TargetConfig(
                host="127.0.0.1",
                port=port,
                engine="vllm",
                service_id="svc",
                source="pod-a",
                allowed_ports=(port,),
            )
            sidecar = Sidecar(ScrapeConfig(), target, ListConsumer())
            batch = await sidecar.scrape_once()
            await sidecar.stop()
            return batch, list(server.served)
        finally:
            await server.stop()

    return asyncio.run(go())


def test_guide_series_match_ground_truth() -> None:
    batch, served = _scrape_live(SimulatorConfig(seed=5))
    ok = [s for s in served if s.status == 200]
    assert _value(batch, "up") == 1.0
    assert _value(batch, "infer_service_first_token_cost_count") == len(ok) == 9
    assert _value(batch, "infer_service_first_token_cost_sum") == pytest.approx(
        1000 * sum(s.ttft_s or 0 for s in ok)
    )
    gaps = [g for s in ok for g in s.itl_s]
    assert _value(batch, "infer_service_per_token_cost_count") == len(gaps)
    assert _value(batch, "infer_service_per_token_cost_sum") == pytest.approx(1000 * sum(gaps))
    assert _value(batch, "infer_service_request_cost_sum") == pytest.approx(1000 * sum(s.e2e_s for s in ok))
    assert _value(batch, "infer_service_input_token_quantity_sum") == sum(s.prompt_tokens for s in ok)
    assert _value(batch, "infer_service_output_token_quantity_sum") == sum(s.completion_tokens for s in ok)
    assert _value(batch, "infer_service_token_count") == sum(s.completion_tokens for s in ok)
    assert _value(batch, "infer_service_request_connect_count") == 0.0
    assert (
        _value(batch, "infer_service_request_total", path="/v1/chat/completions", code="2xx", method="POST")
        == 8
    )
    assert _value(batch, "infer_service_request_total", path="/v1/completions", code="2xx") == 1
    assert _value(batch, "infer_service_request_total", path="/v1/completions", code="4xx") == 1
    ttft_ms = sorted(1000 * (s.ttft_s or 0) for s in ok)
    assert _value(batch, "infer_service_first_token_cost_bucket", le="100.0") == sum(
        t <= 100 for t in ttft_ms
    )
    for sample in batch:
        assert dict(sample.labels)["service_id"] == "svc"


def test_scrape_uses_openmetrics_from_prometheus_client() -> None:
    # the simulator negotiates like prometheus_client's ASGI app; the sidecar asks for OpenMetrics
    batch, _ = _scrape_live(SimulatorConfig(seed=6))
    names = {s.name for s in batch}
    assert "vllm:request_success_created" in names  # only OpenMetrics carries _created here
    assert "vllm:request_success_total" in names
