"""The simulator against the real ``openai`` client, streamed and not, chat and text completions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest

from simulator import SimulatorConfig, SimulatorServer

MESSAGES = [{"role": "user", "content": "say something about latency please"}]


def _with_server(
    config: SimulatorConfig, body: Callable[[openai.AsyncOpenAI, SimulatorServer], Awaitable[Any]]
) -> Any:
    async def go() -> Any:
        server = SimulatorServer(config)
        await server.start()
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        try:
            return await body(client, server)
        finally:
            await client.close()
            await server.stop()

    return asyncio.run(go())


def test_chat_streamed_with_usage() -> None:
    async def body(client: openai.AsyncOpenAI, server: SimulatorServer) -> Any:
        stream = await client.chat.completions.create(
            model="sim-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
        return chunks, server.served

    chunks, served = _with_server(SimulatorConfig(seed=3), body)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    [record] = served
    assert usage.prompt_tokens == record.prompt_tokens == 5
    assert usage.completion_tokens == record.completion_tokens == len(text.split())
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert record.stream is True
    assert len(record.itl_s) == record.completion_tokens - 1


def test_chat_not_streamed() -> None:
    async def body(client: openai.AsyncOpenAI, server: SimulatorServer) -> Any:
        return await client.chat.completions.create(model="sim-model", messages=MESSAGES, max_tokens=3)

    response = _with_server(SimulatorConfig(output_tokens_min=5, output_tokens_max=9), body)
    assert response.object == "chat.completion"
    assert response.choices[0].message.role == "assistant"
    assert len(response.choices[0].message.content.split()) == 3
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 3


def test_completions_streamed_and_not() -> None:
    async def body(client: openai.AsyncOpenAI, server: SimulatorServer) -> Any:
        stream = await client.completions.create(
            model="sim-model", prompt="one two three", stream=True, stream_options={"include_usage": True}
        )
        chunks = [c async for c in stream]
        whole = await client.completions.create(model="sim-model", prompt="one two three")
        return chunks, whole

    chunks, whole = _with_server(SimulatorConfig(), body)
    assert chunks[-1].usage.prompt_tokens == 3
    assert "".join(c.choices[0].text for c in chunks if c.choices).strip()
    assert whole.object == "text_completion"
    assert whole.usage.prompt_tokens == 3
    assert whole.choices[0].text.strip()


@pytest.mark.parametrize(
    ("config", "error"),
    [
        (SimulatorConfig(error_rate=1.0), openai.InternalServerError),
        (SimulatorConfig(rate_limit_rate=1.0), openai.RateLimitError),
        (SimulatorConfig(bad_request_rate=1.0), openai.BadRequestError),
    ],
)
def test_injected_errors_reach_the_client_typed(config: SimulatorConfig, error: type[Exception]) -> None:
    async def body(client: openai.AsyncOpenAI, server: SimulatorServer) -> Any:
        with pytest.raises(error):
            await client.chat.completions.create(model="sim-model", messages=MESSAGES, stream=True)
        return server.served

    [record] = _with_server(config, body)
    assert record.ttft_s is None
    assert record.status in (500, 429, 400)


def test_unknown_model_is_404() -> None:
    async def body(client: openai.AsyncOpenAI, server: SimulatorServer) -> Any:
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="other", messages=MESSAGES)

    _with_server(SimulatorConfig(), body)
