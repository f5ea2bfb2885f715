"""A sidecar's pod collector with an ingress proxy, SLOs and a price from its configuration: the
SLO counters and the cost counter reach its consumer with the pod's identity, ``role`` included."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from collector import ListConsumer
from infersight.config import config_from_dict
from infersight.pod import PodCollector
from model.errors import ConfigError
from model.series import Sample
from simulator import SimulatorConfig, SimulatorServer


async def _discard(_: Any) -> None:
    return None


def test_pod_reports_slo_and_cost_series() -> None:
    async def go() -> tuple[list[Sample], int]:
        server = SimulatorServer(
            SimulatorConfig(ttft_median_ms=2, ttft_sigma=0, slow_every=2, slow_ttft_ms=2500)
        )
        await server.start()
        config = config_from_dict(
            {
                "targets": [
                    {
                        "url": f"{server.url}/metrics",
                        "allowed_ports": [server.port],
                        "service_id": "svc",
                        "project_id": "p",
                        "role": "decode",
                    }
                ],
                "proxy": {"listen": "127.0.0.1:0", "upstream": server.url},
                "slos": [{"name": "ttft", "service_id": "svc", "ttft_ms": 1500}],
                "cost": {"price_per_hour": 3.6, "per": "accelerator", "accelerators": 2},
            }
        )
        sink = ListConsumer()
        pod = PodCollector(config, sink, _discard, _discard)
        await pod.start()
        try:
            assert pod.proxy is not None
            async with httpx.AsyncClient(base_url=pod.proxy.url, timeout=30) as client:
                body = {"model": "sim-model", "prompt": "a b", "stream": True}
                await asyncio.gather(*(client.post("/v1/completions", json=body) for _ in range(6)))
            await pod.flush()
        finally:
            await pod.stop()
            await server.stop()
        return [s for batch in sink.batches for s in batch], sum(r.slowed for r in server.served)

    samples, slowed = asyncio.run(go())
    assert slowed == 3
    last = {(s.name, dict(s.labels).get("result", "")): s for s in samples}
    good, bad = (
        last[("infersight_slo_requests_total", "good")],
        last[("infersight_slo_requests_total", "bad")],
    )
    assert (good.value, bad.value) == (3, 3)
    assert dict(bad.labels) | {"result": ""} == {
        "__name__": "infersight_slo_requests_total",
        "service_id": "svc",
        "project_id": "p",
        "role": "decode",
        "slo": "ttft",
        "result": "",
    }
    cost = last[("infersight_cost_total", "")]
    assert dict(cost.labels)["currency"] == "USD"
    assert dict(cost.labels)["role"] == "decode"
    assert 0 < cost.value < 7.2  # 7.20 an hour for two accelerators; the test runs for seconds


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"slos": {"name": "a"}}, "slos"),
        ({"slos": [{"name": "a", "service_id": "s", "ttft_ms": 0}]}, "slos[0].ttft_ms"),
        ({"cost": {"price_per_hour": -1}}, "cost.price_per_hour"),
        ({"cost": {"price_per_hour": "2"}}, "cost.price_per_hour"),
        ({"cost": {"per": "gpu"}}, "cost.per"),
        ({"cost": {"accelerators": 0}}, "cost.accelerators"),
        ({"cost": {"currency": "dollars"}}, "cost.currency"),
        ({"cost": {"prize": 1}}, "cost.prize"),
    ],
)
def test_bad_slo_and_cost_sections_name_the_key(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(where)):
        config_from_dict(data)


def test_slo_and_cost_sections_are_read() -> None:
    config = config_from_dict(
        {
            "slos": [{"name": "a", "service_id": 7, "tpot_ms": 40, "period": "7d"}],
            "cost": {"price_per_hour": 2, "per": "accelerator", "accelerators": 4, "currency": "EUR"},
        }
    )
    assert config.slos[0].service_id == "7"
    assert config.slos[0].period_s == 7 * 86400
    assert config.cost is not None
    assert config.cost.hourly == 8.0
