"""Demo load: Poisson arrivals of chat/text completions, streamed or not, spread over engines.

Used by the demo and the end-to-end test to give simulators (or any OpenAI-compatible engine)
something to serve; what was served is read back from the engines' ground truth, not from here.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from loguru import logger

from model.errors import ConfigError
from simulator.plan import WORDS


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    """Arrival rate over all engines (requests/s), request mix, and the seed of the mix.

    >>> TrafficConfig(rps=5, stream_fraction=0.5).validate()
    """

    rps: float = 2.0
    stream_fraction: float = 0.8
    chat_fraction: float = 0.9
    include_usage: bool = True
    prompt_words_min: int = 4
    prompt_words_max: int = 64
    max_tokens: int | None = None
    seed: int | None = 0
    timeout_s: float = 60.0

    def validate(self) -> None:
        if self.rps <= 0:
            raise ConfigError(f"traffic.rps: must be > 0 (got {self.rps})")
        if not 0 <= self.stream_fraction <= 1:
            raise ConfigError(f"traffic.stream_fraction: must be in [0, 1] (got {self.stream_fraction})")
        if not 0 <= self.chat_fraction <= 1:
            raise ConfigError(f"traffic.chat_fraction: must be in [0, 1] (got {self.chat_fraction})")
        if not 1 <= self.prompt_words_min <= self.prompt_words_max:
            raise ConfigError("traffic.prompt_words_min: need 1 <= prompt_words_min <= prompt_words_max")


@dataclass(slots=True)
class TrafficReport:
    """What the driver sent and how each request ended, by HTTP status (0 = transport error)."""

    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def _request(rng: random.Random, config: TrafficConfig, model: str) -> tuple[str, dict[str, Any]]:
    words = " ".join(
        rng.choice(WORDS) for _ in range(rng.randint(config.prompt_words_min, config.prompt_words_max))
    )
    stream = rng.random() < config.stream_fraction
    body: dict[str, Any] = {"model": model, "stream": stream}
    if stream and config.include_usage:
        body["stream_options"] = {"include_usage": True}
    if config.max_tokens is not None:
        body["max_tokens"] = config.max_tokens
    if rng.random() < config.chat_fraction:
        return "/v1/chat/completions", {**body, "messages": [{"role": "user", "content": words}]}
    return "/v1/completions", {**body, "prompt": words}


async def _send(client: httpx.AsyncClient, url: str, body: dict[str, Any], report: TrafficReport) -> None:
    try:
        async with client.stream("POST", url, json=body) as response:
            async for _ in response.aiter_bytes():
                pass
            report.count(response.status_code)
    except httpx.HTTPError as exc:
        logger.debug("demo request to {} failed: {!r}", url, exc)
        report.count(0)


async def drive(
    engines: Sequence[tuple[str, str]],
    config: TrafficConfig | None = None,
    *,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
) -> TrafficReport:
    """Send requests to ``engines`` ((base_url, model) pairs, chosen uniformly) until
    ``duration_s`` has passed or ``stop`` is set; wait for the requests in flight, then report.
    """
    config = config or TrafficConfig()
    config.validate()
    if not engines:
        raise ValueError("drive() needs at least one engine")
    rng = random.Random(config.seed)
    stop = stop or asyncio.Event()
    report = TrafficReport()
    loop = asyncio.get_running_loop()
    deadline = None if duration_s is None else loop.time() + duration_s
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=config.timeout_s) as client:
        while not stop.is_set():
            wait = rng.expovariate(config.rps)
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - loop.time()))
            try:
                await asyncio.wait_for(stop.wait(), wait)
                break
            except TimeoutError:
                pass
            if deadline is not None and loop.time() >= deadline:
                break
            base_url, model = engines[rng.randrange(len(engines))]
            path, body = _request(rng, config, model)
            task = asyncio.create_task(_send(client, base_url + path, body, report))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            report.sent += 1
        if tasks:
            await asyncio.gather(*tasks)
    return report
