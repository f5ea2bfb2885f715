"""SGLang's series → the guide's. Names from SGLang's metrics docs (``sglang:`` prefix, seconds).

SGLang exposes no HTTP request counter by status code, so ``infer_service_request_total`` needs
the ingress proxy in front of it; everything else maps like vLLM's. Beyond the guide
(python/sglang/srt/metrics/collector.py): queue time (``sglang:queue_time_seconds``, in ms),
KV-cache use (``sglang:token_usage``, the share of the token pool in use, 0..1), prompt tokens,
prefix-cache hits (``sglang:cached_tokens_total``, tokens, by ``cache_source`` where the engine
splits them), output tokens per request (``sglang:generation_tokens_histogram``, where the server
collects token histograms; its prompt one counts only uncached tokens in current releases, so it is
not the guide's input quantity), retracted requests as preemptions
(``sglang:num_retracted_requests_total``), and ``sglang:lora_pool_slots_used`` as the adapters in use.
"""

from __future__ import annotations

from collector import catalog
from collector.engines.mapping import MS_PER_S, Derived, EngineMap
from collector.engines.mapping import adapt as adapt_with
from collector.engines.mapping import derive as derive_with
from collector.parse import ParsedSample

SGLANG = EngineMap(
    histograms={
        "sglang:time_to_first_token_seconds": (catalog.FIRST_TOKEN_COST, MS_PER_S),
        "sglang:time_per_output_token_seconds": (catalog.PER_TOKEN_COST, MS_PER_S),
        "sglang:inter_token_latency_seconds": (catalog.PER_TOKEN_COST, MS_PER_S),
        "sglang:e2e_request_latency_seconds": (catalog.REQUEST_COST, MS_PER_S),
        "sglang:queue_time_seconds": (catalog.ENGINE_QUEUE_TIME, MS_PER_S),
        "sglang:generation_tokens_histogram": (catalog.OUTPUT_TOKEN_QUANTITY, 1.0),
    },
    supersedes={"sglang:time_per_output_token_seconds": "sglang:inter_token_latency_seconds"},
    counters={
        "sglang:generation_tokens_total": catalog.TOKEN_COUNT,
        "sglang:prompt_tokens_total": catalog.ENGINE_PROMPT_TOKENS,
        "sglang:cached_tokens_total": catalog.ENGINE_PREFIX_CACHE_HITS,
        "sglang:num_retracted_requests_total": catalog.ENGINE_PREEMPTIONS,
    },
    gauges={
        "sglang:token_usage": (catalog.ENGINE_KV_CACHE_USAGE, 1.0),
        "sglang:lora_pool_slots_used": (catalog.ENGINE_LORA_ADAPTERS, 1.0),
    },
    connection_gauges=("sglang:num_running_reqs", "sglang:num_queue_reqs"),
)


def derive(samples: list[ParsedSample]) -> list[ParsedSample]:
    return derive_with(SGLANG, samples)


def adapt(samples: list[ParsedSample]) -> Derived:
    """``derive`` plus the histogram families left out as invalid (see ``mapping.adapt``)."""
    return adapt_with(SGLANG, samples)
