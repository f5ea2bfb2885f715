"""Settings of one simulated engine: latency and length distributions, error mix, seed.

Everything the simulator draws comes from these numbers and one seeded random generator, so
two runs with the same seed and the same request order serve the same token counts and
planned delays (the *measured* timings still carry event-loop jitter; ``sim.served`` has them).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from model.errors import ConfigError

PROMPT_TOKENS_MODES = ("words", "uniform")


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Distributions of one fake vLLM engine; times in ms, lengths in tokens.

    >>> SimulatorConfig(ttft_median_ms=80, output_tokens_max=64, error_rate=0.05, seed=7).validate()
    """

    model_name: str = "sim-model"
    engine: str = "0"
    # time to first token: log-normal with this median and sigma (of the underlying normal)
    ttft_median_ms: float = 40.0
    ttft_sigma: float = 0.3
    # gap between successive output tokens: log-normal
    itl_median_ms: float = 8.0
    itl_sigma: float = 0.2
    # output length: uniform integer in [min, max], capped by the request's max_tokens
    output_tokens_min: int = 4
    output_tokens_max: int = 16
    # prompt length: "words" counts whitespace-separated words of the prompt/messages,
    # "uniform" draws from [prompt_tokens_min, prompt_tokens_max]
    prompt_tokens: str = "words"
    prompt_tokens_min: int = 16
    prompt_tokens_max: int = 256
    # fractions of requests answered with an injected error (OpenAI-style body)
    error_rate: float = 0.0  # 500
    rate_limit_rate: float = 0.0  # 429
    bad_request_rate: float = 0.0  # 400
    seed: int | None = 0
    # engine capacity: requests beyond max_num_seqs wait (vllm:num_requests_waiting)
    max_num_seqs: int = 64
    max_model_len: int = 4096
    kv_cache_tokens: int = 65536
    # deterministic SLO misses: every slow_every-th request that is served (not an injected error)
    # waits slow_ttft_ms for its first token; 0 turns it off. slow_for_s: only during the first
    # seconds after the engine started (None: always), so burn-rate alerts fire and then resolve.
    slow_every: int = 0
    slow_ttft_ms: float = 0.0
    slow_for_s: float | None = None
    # ground-truth records kept; past this the oldest half is dropped (long demos)
    served_limit: int = 100_000

    def validate(self) -> None:
        """Raise ConfigError naming the first wrong field."""
        checks: list[tuple[bool, str, str]] = [
            (bool(self.model_name), "model_name", "must not be empty"),
            (self.ttft_median_ms > 0, "ttft_median_ms", "must be > 0"),
            (self.ttft_sigma >= 0, "ttft_sigma", "must be >= 0"),
            (self.itl_median_ms > 0, "itl_median_ms", "must be > 0"),
            (self.itl_sigma >= 0, "itl_sigma", "must be >= 0"),
            (self.output_tokens_min >= 1, "output_tokens_min", "must be >= 1"),
            (self.output_tokens_max >= self.output_tokens_min, "output_tokens_max", "must be >= min"),
            (
                self.prompt_tokens in PROMPT_TOKENS_MODES,
                "prompt_tokens",
                f"must be one of {PROMPT_TOKENS_MODES}",
            ),
            (self.prompt_tokens_min >= 1, "prompt_tokens_min", "must be >= 1"),
            (self.prompt_tokens_max >= self.prompt_tokens_min, "prompt_tokens_max", "must be >= min"),
            (0 <= self.error_rate <= 1, "error_rate", "must be in [0, 1]"),
            (0 <= self.rate_limit_rate <= 1, "rate_limit_rate", "must be in [0, 1]"),
            (0 <= self.bad_request_rate <= 1, "bad_request_rate", "must be in [0, 1]"),
            (
                self.error_rate + self.rate_limit_rate + self.bad_request_rate <= 1,
                "error_rate",
                "error_rate + rate_limit_rate + bad_request_rate must be <= 1",
            ),
            (self.max_num_seqs >= 1, "max_num_seqs", "must be >= 1"),
            (self.max_model_len >= 1, "max_model_len", "must be >= 1"),
            (self.kv_cache_tokens >= 1, "kv_cache_tokens", "must be >= 1"),
            (self.served_limit >= 1, "served_limit", "must be >= 1"),
            (self.slow_every >= 0, "slow_every", "must be >= 0"),
            (self.slow_every == 0 or self.slow_ttft_ms > 0, "slow_ttft_ms", "must be > 0 with slow_every"),
            (self.slow_for_s is None or self.slow_for_s > 0, "slow_for_s", "must be > 0"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(f"simulator.{name}: {message} (got {getattr(self, name)!r})")

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "simulator") -> SimulatorConfig:
        """Build from a YAML mapping; unknown keys are errors naming their path."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})")
        config = cls(**data)
        config.validate()
        return config
