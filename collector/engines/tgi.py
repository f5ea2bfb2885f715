"""Hugging Face TGI's series → the guide's. TGI (metrics-rs) records durations in seconds.

- ``tgi_request_success`` → ``code="2xx"``; ``tgi_request_failure{err}`` → ``4xx`` for client-side
  errors (``validation``, ``overloaded`` — TGI answers 422 / 429) and ``5xx`` for the rest.
- ``tgi_request_mean_time_per_token_duration`` (one observation per request: its mean time per
  output token) stands in for TPOT; TGI has no per-token histogram and no TTFT histogram, so
  ``infer_service_first_token_cost`` needs the ingress proxy in front of TGI.
- Beyond the guide (router/src/server.rs and infer/): queue time per request
  (``tgi_request_queue_duration``, in ms). TGI's prefill/decode figures
  (``tgi_batch_forward_duration{method}``) are per batch, not per request, so they stay as they are.
"""

from __future__ import annotations

from collections import defaultdict

from collector import catalog
from collector.engines.mapping import MS_PER_S, Derived, EngineMap, request_total
from collector.engines.mapping import adapt as adapt_with
from collector.engines.mapping import derive as derive_with
from collector.parse import ParsedSample

CLIENT_ERRORS = frozenset({"validation", "overloaded"})


def requests(samples: list[ParsedSample]) -> list[ParsedSample]:
    totals: dict[str, float] = defaultdict(float)
    stamp: int | None = None
    for s in samples:
        if s.name == "tgi_request_success":
            totals["2xx"] += s.value
        elif s.name == "tgi_request_failure":
            totals["4xx" if s.labels.get("err") in CLIENT_ERRORS else "5xx"] += s.value
        else:
            continue
        stamp = s.ts_ms if stamp is None else stamp
    return [request_total({"code": code}, value, stamp) for code, value in sorted(totals.items())]


TGI = EngineMap(
    histograms={
        "tgi_request_duration": (catalog.REQUEST_COST, MS_PER_S),
        "tgi_request_mean_time_per_token_duration": (catalog.PER_TOKEN_COST, MS_PER_S),
        "tgi_request_input_length": (catalog.INPUT_TOKEN_QUANTITY, 1.0),
        "tgi_request_generated_tokens": (catalog.OUTPUT_TOKEN_QUANTITY, 1.0),
        "tgi_request_queue_duration": (catalog.ENGINE_QUEUE_TIME, MS_PER_S),
    },
    connection_gauges=("tgi_queue_size", "tgi_batch_current_size"),
    requests=requests,
    notes={
        catalog.REQUEST_TOTAL: "`tgi_request_success` → 2xx; `tgi_request_failure{err}` → 4xx "
        "(validation, overloaded) / 5xx",
    },
)


def derive(samples: list[ParsedSample]) -> list[ParsedSample]:
    return derive_with(TGI, samples)


def adapt(samples: list[ParsedSample]) -> Derived:
    """``derive`` plus the histogram families left out as invalid (see ``mapping.adapt``)."""
    return adapt_with(TGI, samples)
