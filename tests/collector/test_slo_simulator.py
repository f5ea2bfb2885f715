"""The proxy's SLO counts over a live simulator that misses the TTFT target a known share of the
time: attainment and goodput counts equal the simulator's ground truth exactly."""

from __future__ import annotations

import asyncio

import httpx

from collector.config import ProxyConfig
from collector.proxy import IngressProxy
from collector.slo import SloCounter
from model.slo import Slo
from simulator import ServedRequest, SimulatorConfig, SimulatorServer

# Fast requests take a few ms; slowed ones wait 3 s for the first token; the target is between
# them, 2 s above the fast ones, so no scheduling delay on a loaded machine moves a request across
# it (a slowed request can only be later, never earlier).
SLOW_MS = 3000.0
TARGET_MS = 2000.0
SLOW_EVERY = 4
REQUESTS = 26


async def _send(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        chat = {"model": "sim-model", "messages": [{"role": "user", "content": "a b c"}]}
        await asyncio.gather(
            *(
                client.post("/v1/chat/completions", json={**chat, "stream": i % 3 != 0})
                for i in range(REQUESTS)
            )
        )


def _run(config: SimulatorConfig, slo: Slo) -> tuple[SloCounter, list[ServedRequest]]:
    async def go() -> tuple[SloCounter, list[ServedRequest]]:
        server = SimulatorServer(config)
        await server.start()
        counter = SloCounter(lambda: (slo,), {"service_id": "svc", "role": "decode"})
        proxy = IngressProxy(
            ProxyConfig(listen="127.0.0.1:0", upstream=server.url),
            {"service_id": "svc"},
            on_request=counter.observe,
        )
        try:
            await proxy.start()
            await _send(proxy.url)
        finally:
            await proxy.stop()
            await server.stop()
        return counter, list(server.served)

    return asyncio.run(go())


def test_attainment_equals_the_simulators_ground_truth() -> None:
    config = SimulatorConfig(
        ttft_median_ms=2.0, ttft_sigma=0.0, itl_median_ms=1.0, itl_sigma=0.0, output_tokens_max=6,
        error_rate=0.15, rate_limit_rate=0.1, seed=3,
        slow_every=SLOW_EVERY, slow_ttft_ms=SLOW_MS,
    )  # fmt: skip
    slo = Slo("chat-ttft", "svc", ttft_ms=TARGET_MS, bad_errors=("5xx",))
    counter, served = _run(config, slo)
    assert len(served) == REQUESTS
    slowed = sum(s.slowed for s in served)
    errors = sum(s.status == 500 for s in served)
    limited = sum(s.status == 429 for s in served)
    ok = sum(s.status == 200 for s in served)
    assert slowed == ok // SLOW_EVERY > 0  # the seed gives each kind
    assert errors > 0
    assert limited > 0
    good, bad = counter.requests.get(("chat-ttft", "good"), 0), counter.requests.get(("chat-ttft", "bad"), 0)
    assert (good, bad) == (ok - slowed, slowed + errors)  # 429s are left out of the SLO
    assert counter.misses[("chat-ttft", "ttft")] == slowed
    assert counter.misses[("chat-ttft", "error")] == errors
    assert good / (good + bad) == (ok - slowed) / (ok + errors)


def test_slow_window_ends() -> None:
    """``slow_for_s`` ends the misses: after it, nothing is slowed."""
    config = SimulatorConfig(
        ttft_median_ms=2.0, ttft_sigma=0.0, slow_every=1, slow_ttft_ms=5.0, slow_for_s=0.001
    )
    slo = Slo("s", "svc", ttft_ms=TARGET_MS)
    counter, served = _run(config, slo)
    assert not any(s.slowed for s in served)
    assert counter.requests.get(("s", "bad"), 0) == 0
