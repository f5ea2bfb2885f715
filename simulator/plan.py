"""What one request will get, drawn at arrival from the configured distributions.

Pure: a seeded ``random.Random`` and the request body in, a ``Plan`` out; no clock, no I/O.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from simulator.config import SimulatorConfig

WORDS = (
    "the", "model", "token", "stream", "latency", "cache", "prefill", "decode", "batch", "engine",
    "request", "sample", "metric", "quantile", "window", "series", "label", "bucket", "service", "pod",
)  # fmt: skip


class RequestError(ValueError):
    """The request cannot be served; ``status`` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Plan:
    """Drawn outcome of one request: an injected error status, or lengths and planned delays (s)."""

    error_status: int | None
    prompt_tokens: int
    tokens: tuple[str, ...]
    finish_reason: str
    ttft_s: float
    gaps_s: tuple[float, ...]
    slowed: bool = False  # the first token delayed on purpose (SimulatorConfig.slow_every)


def count_prompt_words(body: dict[str, Any], *, chat: bool) -> int:
    """Whitespace-separated words of the messages (chat) or prompt (completions); token-id lists count ids."""
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "'messages' must be a non-empty list")
        texts: list[str] = []
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
        return sum(len(text.split()) for text in texts)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return len(prompt.split())
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, int) for p in prompt):
            return len(prompt)
        return sum(len(p.split()) if isinstance(p, str) else len(p) for p in prompt)
    raise RequestError(400, "'prompt' must be a string or a non-empty list")


def max_tokens_of(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RequestError(400, f"max_tokens must be a positive integer, got {value!r}")
    return value


def _lognormal_s(rng: random.Random, median_ms: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median_ms / 1000.0), sigma)


def _injected_error(rng: random.Random, config: SimulatorConfig) -> int | None:
    u = rng.random()
    for status, rate in (
        (500, config.error_rate),
        (429, config.rate_limit_rate),
        (400, config.bad_request_rate),
    ):
        if u < rate:
            return status
        u -= rate
    return None


def draw_plan(rng: random.Random, config: SimulatorConfig, body: dict[str, Any], *, chat: bool) -> Plan:
    """Validate the body (RequestError on bad input) and draw this request's outcome."""
    words = count_prompt_words(body, chat=chat)
    max_tokens = max_tokens_of(body)
    error_status = _injected_error(rng, config)
    if config.prompt_tokens == "uniform":
        prompt_tokens = rng.randint(config.prompt_tokens_min, config.prompt_tokens_max)
    else:
        prompt_tokens = max(1, words)
    wanted = rng.randint(config.output_tokens_min, config.output_tokens_max)
    n = wanted if max_tokens is None else min(wanted, max_tokens)
    finish_reason = "length" if max_tokens is not None and wanted >= max_tokens else "stop"
    tokens = tuple(" " + rng.choice(WORDS) for _ in range(n))
    ttft_s = _lognormal_s(rng, config.ttft_median_ms, config.ttft_sigma)
    gaps_s = tuple(_lognormal_s(rng, config.itl_median_ms, config.itl_sigma) for _ in range(n - 1))
    return Plan(error_status, prompt_tokens, tokens, finish_reason, ttft_s, gaps_s)
