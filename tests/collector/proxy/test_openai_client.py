"""The real ``openai`` client through the proxy in front of the simulator: TTFT within 1 ms of truth."""

from __future__ import annotations

import asyncio

import openai
import pytest

from collector.config import ProxyConfig
from collector.proxy import IngressProxy, RequestObservation
from simulator import ServedRequest, SimulatorConfig, SimulatorServer


async def _run(
    stream: bool, n: int, include_usage: bool
) -> tuple[list[RequestObservation], list[ServedRequest]]:
    sim = SimulatorServer(SimulatorConfig(seed=3, ttft_median_ms=30, itl_median_ms=5, output_tokens_max=12))
    port = await sim.start()
    seen: list[RequestObservation] = []
    proxy = IngressProxy(
        ProxyConfig(listen="127.0.0.1:0", upstream=f"http://127.0.0.1:{port}"),
        {"service_id": "svc"},
        on_request=seen.append,
    )
    proxy_port = await proxy.start()
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key="x", max_retries=0)
    try:
        # one request first, not compared: it opens the proxy's upstream connection (a TCP
        # handshake the engine never sees); later requests reuse it, as in steady state
        await client.models.list()
        for i in range(n):
            messages = [{"role": "user", "content": f"say {i} things"}]
            if stream:
                options = {"stream_options": {"include_usage": True}} if include_usage else {}
                chunks = await client.chat.completions.create(
                    model="sim-model", messages=messages, stream=True, **options
                )
                async for _ in chunks:
                    pass
            else:
                await client.chat.completions.create(model="sim-model", messages=messages)
            await asyncio.sleep(0.01)  # the proxy records after the last byte went out
    finally:
        await client.close()
        await proxy.stop()
        await sim.stop()
    return [o for o in seen if o.path != "/v1/models"], list(sim.served)


@pytest.mark.parametrize("include_usage", [True, False])
def test_streamed_ttft_matches_the_simulator(include_usage: bool) -> None:
    seen, served = asyncio.run(_run(stream=True, n=8, include_usage=include_usage))
    assert len(seen) == len(served) == 8
    diffs = []
    for obs, truth in zip(seen, served, strict=True):
        assert obs.status == truth.status == 200
        assert obs.ttft_ms is not None
        assert truth.ttft_s is not None
        diffs.append(obs.ttft_ms - truth.ttft_s * 1000)
        assert obs.output_tokens == truth.completion_tokens
        assert len(obs.per_token_ms) == truth.completion_tokens - 1
        assert obs.input_tokens == (truth.prompt_tokens if include_usage else None)
        assert obs.cost_ms >= obs.ttft_ms
    # the proxy sees the first token after the engine wrote it, never before
    assert all(d >= 0 for d in diffs), diffs
    # How close the proxy's TTFT is to the engine's (the goal: within 1 ms) is a benchmark figure,
    # `python -m bench.proxy` (docs/collector.md): a stall of a loaded machine adds milliseconds to
    # any single request, so no bound on the difference is asserted here.


def test_streamed_tpot_matches_the_simulator_on_average() -> None:
    seen, served = asyncio.run(_run(stream=True, n=6, include_usage=True))
    gaps = [g for obs in seen for g in obs.per_token_ms]
    truth_gaps = [g * 1000 for truth in served for g in truth.itl_s]
    assert len(gaps) == len(truth_gaps)
    for obs in seen:  # the gaps lie between the first token and the end of the answer
        assert obs.ttft_ms is not None
        assert all(g >= 0 for g in obs.per_token_ms)
        assert sum(obs.per_token_ms) <= obs.cost_ms - obs.ttft_ms + 1e-6
    # How close they are to the simulator's gaps on average is bench.proxy's to measure (a stalled
    # delivery of one token moves time between two gaps).


def test_not_streamed_has_cost_and_usage_but_no_ttft() -> None:
    seen, served = asyncio.run(_run(stream=False, n=6, include_usage=False))
    for obs, truth in zip(seen, served, strict=True):
        assert obs.status == 200
        assert obs.ttft_ms is None
        assert obs.per_token_ms == ()
        assert obs.input_tokens == truth.prompt_tokens
        assert obs.output_tokens == truth.completion_tokens
        assert obs.cost_ms >= truth.e2e_s * 1000
        assert obs.path == "/v1/chat/completions"
        assert obs.method == "POST"
    extra_ms = sorted(o.cost_ms - t.e2e_s * 1000 for o, t in zip(seen, served, strict=True))
    # the simulator stops its clock before serialising and sending the body; stalls hit single requests
    assert extra_ms[len(extra_ms) // 2] <= 10.0, extra_ms
