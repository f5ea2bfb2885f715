"""The demo's shape in one event loop: N simulators, N sidecars on a short interval, Poisson load.

This is how ``infersight demo`` can wire the parts (with a store consumer instead of the sink).
"""

from __future__ import annotations

import asyncio

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from model.series import Sample
from simulator import SimulatorConfig, TrafficConfig, drive, start_simulators


def test_simulators_sidecars_and_traffic_in_one_loop() -> None:
    async def go() -> tuple[list[list[Sample]], list[int]]:
        servers = await start_simulators(
            [SimulatorConfig(model_name="m", seed=i, ttft_median_ms=5, itl_median_ms=2) for i in range(2)]
        )
        sink = ListConsumer()
        sidecars = [
            Sidecar(
                ScrapeConfig(interval_s=0.2, timeout_s=0.2),
                TargetConfig(
                    host="127.0.0.1",
                    port=server.port or 0,
                    engine="vllm",
                    service_id="svc",
                    source=f"pod-{i}",
                    allowed_ports=(server.port or 0,),
                ),
                sink,
            )
            for i, server in enumerate(servers)
        ]
        loops = [asyncio.create_task(s.run()) for s in sidecars]
        try:
            await drive([(s.url, "m") for s in servers], TrafficConfig(rps=40, seed=1), duration_s=0.7)
            await asyncio.sleep(0.25)  # one more scrape after the last request
        finally:
            for sidecar in sidecars:
                await sidecar.stop()
            await asyncio.gather(*loops)
            for server in servers:
                await server.stop()
        return sink.batches, [sum(r.status == 200 for r in s.served) for s in servers]

    batches, ok = asyncio.run(go())
    assert len(batches) >= 6
    last: dict[str, float] = {}
    for batch in batches:
        for sample in batch:
            labels = dict(sample.labels)
            if sample.name == "up":
                assert sample.value == 1.0
            if sample.name == "infer_service_first_token_cost_count":
                last[labels["source"]] = sample.value
    assert last == {"pod-0": ok[0], "pod-1": ok[1]}
