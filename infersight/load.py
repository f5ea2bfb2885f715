"""Streamed chat requests against simulated services, as clients behind a load balancer send them."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass, field

import httpx

PROMPTS = (
    "Summarise the release notes of the inference gateway in three sentences.",
    "Translate 'time to first token' into French and German.",
    "Write a haiku about GPUs waiting for work.",
    "Explain the difference between TTFT and TPOT to a new on-call engineer.",
)


@dataclass
class LoadStats:
    """What the clients saw, per service: status codes and tokens received."""

    codes: dict[str, Counter[int]] = field(default_factory=dict)
    tokens: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.codes.values())


async def _one_request(client: httpx.AsyncClient, base_url: str, rng: random.Random) -> tuple[int, int]:
    body = {
        "model": "sim-model",
        "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
    }
    tokens = 0
    async with client.stream("POST", f"{base_url}/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code, 0
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
    return 200, tokens


async def drive_load(
    services: dict[str, list[str]], concurrency: int, stop: asyncio.Event, stats: LoadStats, seed: int = 0
) -> None:
    """Send requests until ``stop`` is set: services in turn, pods of a service round-robin."""
    rings = {name: itertools.cycle(urls) for name, urls in services.items()}
    order = itertools.cycle(list(services))
    for name in services:
        stats.codes.setdefault(name, Counter())

    async def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        async with httpx.AsyncClient(timeout=30.0) as client:
            while not stop.is_set():
                name = next(order)
                try:
                    code, tokens = await _one_request(client, next(rings[name]), rng)
                except httpx.HTTPError:
                    code, tokens = 0, 0  # connection-level failure: no HTTP status at all
                stats.codes[name][code] += 1
                stats.tokens[name] += tokens

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
