"""With ``leading`` set (several servers, infersight/leader.py), the runner evaluates and notifies
only while its process leads, and stops when it no longer does."""

from __future__ import annotations

import asyncio
import time

from alerts.config import AlertsSection
from alerts.runner import AlertRunner
from query.promql.engine import Engine
from store.memory import MemoryStore
from tests.alerts.alertmanager_fixture import start_sink


def test_only_the_leader_evaluates_and_notifies() -> None:
    server, sink = start_sink()
    store = MemoryStore()
    now = int(time.time() * 1000)
    store.append({"__name__": "up", "service_id": "s1", "source": "p0", "project_id": "p"}, now, 0)
    section = AlertsSection.from_dict(
        {
            "interval": "1s",
            "defaults": {"health_for": 0},
            "webhook_urls": [f"http://127.0.0.1:{server.server_port}/h"],
        }
    )
    runner = AlertRunner(section, Engine(store).instant, lambda _: None)
    leading = [False]
    runner.leading = lambda: leading[0]
    rounds: list[int] = []

    async def main() -> None:
        await runner.start()
        for _ in range(5):  # several polls as a follower: nothing evaluated, nothing sent
            await asyncio.sleep(0.2)
            assert not runner.evaluating
        rounds.append(len(sink.received))
        leading[0] = True
        for _ in range(100):
            if sink.received:
                break
            await asyncio.sleep(0.1)
        rounds.append(len(sink.received))
        leading[0] = False
        for _ in range(100):
            if not runner.evaluating:
                break
            await asyncio.sleep(0.1)
        assert not runner.evaluating
        await runner.stop()

    try:
        asyncio.run(main())
    finally:
        server.shutdown()
    assert rounds[0] == 0
    assert rounds[1] > 0
