"""simulator.plan and simulator.config: draws are reproducible, capped and validated."""

from __future__ import annotations

import random
from typing import Any

import pytest

from model.errors import ConfigError
from simulator.config import SimulatorConfig
from simulator.plan import RequestError, count_prompt_words, draw_plan

CHAT = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]}


def _plans(seed: int, n: int, config: SimulatorConfig | None = None) -> list[Any]:
    rng = random.Random(seed)
    return [draw_plan(rng, config or SimulatorConfig(), CHAT, chat=True) for _ in range(n)]


def test_same_seed_same_plans() -> None:
    assert _plans(5, 20) == _plans(5, 20)
    assert _plans(5, 20) != _plans(6, 20)


def test_lengths_within_bounds_and_gaps_one_fewer() -> None:
    config = SimulatorConfig(output_tokens_min=3, output_tokens_max=7)
    for plan in _plans(1, 200, config):
        assert 3 <= len(plan.tokens) <= 7
        assert len(plan.gaps_s) == len(plan.tokens) - 1
        assert plan.prompt_tokens == 4


def test_max_tokens_caps_output_and_sets_length() -> None:
    plan = draw_plan(
        random.Random(0),
        SimulatorConfig(output_tokens_min=10, output_tokens_max=10),
        {**CHAT, "max_tokens": 4},
        chat=True,
    )
    assert (len(plan.tokens), plan.finish_reason) == (4, "length")


def test_ttft_median_follows_config() -> None:
    plans = _plans(2, 2001, SimulatorConfig(ttft_median_ms=50, ttft_sigma=0.5))
    median = sorted(p.ttft_s for p in plans)[1000]
    assert median == pytest.approx(0.050, rel=0.1)


def test_error_mix() -> None:
    config = SimulatorConfig(error_rate=0.2, rate_limit_rate=0.1, bad_request_rate=0.1)
    statuses = [p.error_status for p in _plans(3, 4000, config)]
    assert statuses.count(500) / 4000 == pytest.approx(0.2, abs=0.03)
    assert statuses.count(429) / 4000 == pytest.approx(0.1, abs=0.03)
    assert statuses.count(400) / 4000 == pytest.approx(0.1, abs=0.03)


def test_uniform_prompt_tokens() -> None:
    config = SimulatorConfig(prompt_tokens="uniform", prompt_tokens_min=100, prompt_tokens_max=120)
    assert all(100 <= p.prompt_tokens <= 120 for p in _plans(4, 100, config))


@pytest.mark.parametrize(
    ("body", "chat", "words"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a b c"}]}]}, True, 3),
        ({"prompt": "one two"}, False, 2),
        ({"prompt": [1, 2, 3, 4]}, False, 4),
        ({"prompt": ["a b", "c"]}, False, 3),
    ],
)
def test_prompt_words(body: dict[str, Any], chat: bool, words: int) -> None:
    assert count_prompt_words(body, chat=chat) == words


@pytest.mark.parametrize(
    ("body", "chat"),
    [({}, True), ({"messages": []}, True), ({"prompt": 3}, False), ({**CHAT, "max_tokens": 0}, True)],
)
def test_bad_requests(body: dict[str, Any], chat: bool) -> None:
    with pytest.raises(RequestError) as err:
        draw_plan(random.Random(0), SimulatorConfig(), body, chat=chat)
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ttft_median_ms": 0}, "ttft_median_ms"),
        ({"output_tokens_min": 5, "output_tokens_max": 4}, "output_tokens_max"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": 0.6, "rate_limit_rate": 0.6}, "error_rate"),
        ({"prompt_tokens": "chars"}, "prompt_tokens"),
    ],
)
def test_config_validation_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"simulator.{field}"):
        SimulatorConfig(**changes).validate()


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"sim\.ttft"):
        SimulatorConfig.from_dict({"ttft": 3}, "sim")
    assert SimulatorConfig.from_dict({"seed": 4}).seed == 4
