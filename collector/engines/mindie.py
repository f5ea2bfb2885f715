"""Huawei MindIE Server's series (service-monitor mode, vLLM-like names without a prefix) → the guide's.

``request_success_total`` → ``code="2xx"`` and ``request_failed_total`` → ``code="5xx"`` (MindIE does
not split failures by status). Beyond the guide: KV-cache use (``npu_cache_usage_perc``, 0..1 as
in vLLM), prompt tokens and preemptions.
"""

from __future__ import annotations

from collector import catalog
from collector.engines.mapping import MS_PER_S, Derived, EngineMap, request_total
from collector.engines.mapping import adapt as adapt_with
from collector.engines.mapping import derive as derive_with
from collector.parse import ParsedSample

STATUS_COUNTERS = {"request_success_total": "2xx", "request_failed_total": "5xx"}


def requests(samples: list[ParsedSample]) -> list[ParsedSample]:
    return [
        request_total({**s.labels, "code": STATUS_COUNTERS[s.name]}, s.value, s.ts_ms)
        for s in samples
        if s.name in STATUS_COUNTERS
    ]


MINDIE = EngineMap(
    histograms={
        "time_to_first_token_seconds": (catalog.FIRST_TOKEN_COST, MS_PER_S),
        "time_per_output_token_seconds": (catalog.PER_TOKEN_COST, MS_PER_S),
        "e2e_request_latency_seconds": (catalog.REQUEST_COST, MS_PER_S),
        "request_prompt_tokens": (catalog.INPUT_TOKEN_QUANTITY, 1.0),
        "request_generation_tokens": (catalog.OUTPUT_TOKEN_QUANTITY, 1.0),
    },
    counters={
        "generation_tokens_total": catalog.TOKEN_COUNT,
        "prompt_tokens_total": catalog.ENGINE_PROMPT_TOKENS,
        "num_preemptions_total": catalog.ENGINE_PREEMPTIONS,
    },
    gauges={"npu_cache_usage_perc": (catalog.ENGINE_KV_CACHE_USAGE, 1.0)},
    connection_gauges=("num_requests_running", "num_requests_waiting"),
    requests=requests,
    notes={catalog.REQUEST_TOTAL: "`request_success_total` → 2xx, `request_failed_total` → 5xx"},
)


def derive(samples: list[ParsedSample]) -> list[ParsedSample]:
    return derive_with(MINDIE, samples)


def adapt(samples: list[ParsedSample]) -> Derived:
    """``derive`` plus the histogram families left out as invalid (see ``mapping.adapt``)."""
    return adapt_with(MINDIE, samples)
