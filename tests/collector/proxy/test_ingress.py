"""The proxy component: its flush hands the guide's series, with identity labels, to the consumer."""

from __future__ import annotations

import asyncio

import httpx

from collector.config import ProxyConfig
from collector.pipeline import ListConsumer
from collector.proxy import IngressProxy
from tests.collector.proxy.conftest import RawUpstream


def test_flush_hands_series_to_the_consumer_and_stop_flushes_again() -> None:
    async def go() -> ListConsumer:
        sink = ListConsumer()
        async with RawUpstream(drip_s=0.01, drip_tokens=3) as up:
            config = ProxyConfig(listen="127.0.0.1:0", upstream=f"http://127.0.0.1:{up.port}")
            proxy = IngressProxy(config, {"service_id": "svc", "source": "pod-1"}, sink)
            await proxy.start()
            async with httpx.AsyncClient() as client:
                await client.get(f"{proxy.url}/drip")
                await client.get(f"{proxy.url}/other")
            await asyncio.sleep(0.02)
            await proxy.flush()
            await proxy.stop()
            await proxy.stop()  # safe twice
        return sink

    sink = asyncio.run(go())
    assert len(sink.batches) == 2  # the explicit flush and the one at stop
    first = {(s.name, dict(s.labels).get("path", "")): s.value for s in sink.batches[0]}
    assert first[("infer_service_request_total", "/drip")] == 1
    assert first[("infer_service_request_total", "/other")] == 1
    assert first[("infer_service_first_token_cost_count", "")] == 1
    assert first[("infer_service_per_token_cost_count", "")] == 2
    assert first[("infer_service_output_token_quantity_sum", "")] == 3
    assert all(dict(s.labels)["source"] == "pod-1" for s in sink.batches[0])
