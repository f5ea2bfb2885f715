"""llama-server's /metrics before and after traffic through the proxy (captured, ``SOURCE.md``):
they parse, and the counters rose by what the client was told (no engine needed)."""

from __future__ import annotations

from pathlib import Path

from collector.parse import parse_text

FOLDER = Path(__file__).resolve().parents[1] / "testdata" / "captured" / "engines" / "llamacpp-proxy"
CLIENT_PROMPT_TOKENS, CLIENT_COMPLETION_TOKENS = 136, 32  # the client's usage summed (SOURCE.md)


def _counters(name: str) -> dict[str, float]:
    return {s.name: s.value for s in parse_text((FOLDER / name).read_text(), strict=False)}


def test_the_counters_rose_by_what_the_client_was_told() -> None:
    before, after = _counters("metrics-before.txt"), _counters("metrics-after.txt")
    assert set(before) == set(after)
    assert all(value == 0 for name, value in before.items() if name.endswith("_total"))
    assert after["llamacpp:tokens_predicted_total"] == CLIENT_COMPLETION_TOKENS
    evaluated, cached = after["llamacpp:prompt_tokens_total"], after["llamacpp:prompt_tokens_cached_total"]
    assert evaluated + cached == CLIENT_PROMPT_TOKENS
