"""NVIDIA Dynamo's HTTP frontend (``python -m dynamo.frontend``) series → the guide's.

The frontend is the OpenAI-compatible entry point in front of Dynamo's workers (vLLM, SGLang,
TensorRT-LLM); its ``/metrics`` (lib/llm/src/http/service/metrics.rs, names in
lib/runtime/src/metrics/prometheus_names.rs) has the prefix ``dynamo_frontend`` (changeable with
``DYN_METRICS_PREFIX``; the default is mapped) and a ``model`` label on every series:

- histograms in seconds → ms: ``time_to_first_token_seconds`` (TTFT), ``inter_token_latency_seconds``
  (TPOT), ``request_duration_seconds`` (request latency); token histograms
  ``input_sequence_tokens`` / ``output_sequence_tokens``;
- ``output_tokens_total`` → ``infer_service_token_count``;
- ``requests_total{model,endpoint,request_type,status}`` → ``infer_service_request_total``: status
  ``success`` → ``code="2xx"``, ``error`` → ``5xx`` (the frontend does not count by HTTP status),
  ``endpoint`` (``chat_completions``, ``completions``, ...) kept as ``path``;
- connections = ``inflight_requests`` (requests from the handler's start to the response's end;
  ``queued_requests``, those still waiting for their first token, are a part of them, not added);
- beyond the guide: prefix-cache hits from the per-request ``cached_tokens`` histogram's ``_sum``
  and queries from ``input_sequence_tokens_sum``, where the frontend exposes ``cached_tokens``.
"""

from __future__ import annotations

from collector import catalog
from collector.engines.mapping import MS_PER_S, Derived, EngineMap, request_total
from collector.engines.mapping import adapt as adapt_with
from collector.engines.mapping import derive as derive_with
from collector.parse import ParsedSample

PREFIX = "dynamo_frontend_"
REQUESTS = PREFIX + "requests_total"
STATUS_CODES = {"success": "2xx", "error": "5xx"}


def requests(samples: list[ParsedSample]) -> list[ParsedSample]:
    out = []
    for s in samples:
        if s.name != REQUESTS:
            continue
        labels = dict(s.labels)
        status = labels.pop("status", "")
        labels["code"] = STATUS_CODES.get(status, "5xx")
        endpoint = labels.pop("endpoint", None)
        if endpoint is not None:
            labels["path"] = endpoint
        out.append(request_total(labels, s.value, s.ts_ms))
    return out


INPUT_TOKENS_SUM = PREFIX + "input_sequence_tokens_sum"
CACHED_TOKENS_SUM = PREFIX + "cached_tokens_sum"


def prefix_cache_queries(samples: list[ParsedSample]) -> list[ParsedSample]:
    """The prompt tokens as prefix-cache queries, only beside a cached-token count to compare with."""
    if not any(s.name == CACHED_TOKENS_SUM for s in samples):
        return []
    name = catalog.ENGINE_PREFIX_CACHE_QUERIES
    return [
        ParsedSample(name, dict(s.labels), s.value, s.ts_ms, name, "counter")
        for s in samples
        if s.name == INPUT_TOKENS_SUM
    ]


DYNAMO = EngineMap(
    histograms={
        PREFIX + "time_to_first_token_seconds": (catalog.FIRST_TOKEN_COST, MS_PER_S),
        PREFIX + "inter_token_latency_seconds": (catalog.PER_TOKEN_COST, MS_PER_S),
        PREFIX + "request_duration_seconds": (catalog.REQUEST_COST, MS_PER_S),
        PREFIX + "input_sequence_tokens": (catalog.INPUT_TOKEN_QUANTITY, 1.0),
        PREFIX + "output_sequence_tokens": (catalog.OUTPUT_TOKEN_QUANTITY, 1.0),
    },
    counters={
        PREFIX + "output_tokens_total": catalog.TOKEN_COUNT,
        CACHED_TOKENS_SUM: catalog.ENGINE_PREFIX_CACHE_HITS,
    },
    connection_gauges=(PREFIX + "inflight_requests",),
    requests=requests,
    extras=(prefix_cache_queries,),
    notes={
        catalog.ENGINE_PREFIX_CACHE_QUERIES: f"`{INPUT_TOKENS_SUM}` (where `{CACHED_TOKENS_SUM}` is exposed)",
        catalog.REQUEST_TOTAL: f"`{REQUESTS}{{status}}`: success → 2xx, error → 5xx; `endpoint` → `path`",
    },
)


def derive(samples: list[ParsedSample]) -> list[ParsedSample]:
    return derive_with(DYNAMO, samples)


def adapt(samples: list[ParsedSample]) -> Derived:
    """``derive`` plus the histogram families left out as invalid (see ``mapping.adapt``)."""
    return adapt_with(DYNAMO, samples)
