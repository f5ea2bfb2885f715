"""simulator.traffic: Poisson demo load spread over several simulators in one loop."""

from __future__ import annotations

import asyncio

import pytest

from model.errors import ConfigError
from simulator import SimulatorConfig, TrafficConfig, drive, start_simulators


def test_drive_spreads_requests_and_matches_ground_truth() -> None:
    async def go() -> tuple[int, dict[int, int], list[int], int]:
        servers = await start_simulators(
            [
                SimulatorConfig(model_name="a", ttft_median_ms=5),
                SimulatorConfig(model_name="b", ttft_median_ms=5),
            ]
        )
        try:
            engines = [(servers[0].url, "a"), (servers[1].url, "b")]
            report = await drive(engines, TrafficConfig(rps=80, seed=2), duration_s=0.5)
            streamed = sum(s.stream for server in servers for s in server.served)
            return report.sent, report.statuses, [len(s.served) for s in servers], streamed
        finally:
            for server in servers:
                await server.stop()

    sent, statuses, served, streamed = asyncio.run(go())
    assert sent >= 15
    assert statuses == {200: sent}
    assert sum(served) == sent
    assert all(n > 0 for n in served)
    assert 0 < streamed < sent


def test_stop_event_ends_the_drive() -> None:
    async def go() -> int:
        [server] = await start_simulators([SimulatorConfig(ttft_median_ms=5)])
        stop = asyncio.Event()
        try:
            task = asyncio.create_task(drive([(server.url, "sim-model")], TrafficConfig(rps=50), stop=stop))
            await asyncio.sleep(0.3)
            stop.set()
            report = await asyncio.wait_for(task, 5)
            return report.sent - len(server.served)
        finally:
            await server.stop()

    assert asyncio.run(go()) == 0


def test_traffic_config_validation() -> None:
    with pytest.raises(ConfigError, match=r"traffic\.rps"):
        TrafficConfig(rps=0).validate()
