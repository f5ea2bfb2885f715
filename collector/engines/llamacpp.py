"""llama.cpp server (``--metrics``) series → the guide's.

llama.cpp exposes counters and gauges only (``llamacpp:*``): no latency or token histograms and
no request counter by status, so TTFT/TPOT/request counts for llama.cpp come from the ingress
proxy. Mapped: generated tokens, and connections = requests processing + deferred. Derived from
what its counters allow (tools/server/server.cpp, ``/metrics``):

- ms per output token and per prompt token over each scrape interval, from the time counters:
  Δ``llamacpp:tokens_predicted_seconds_total`` / Δ``llamacpp:tokens_predicted_total`` x 1000 and
  Δ``llamacpp:prompt_seconds_total`` / Δ``llamacpp:prompt_tokens_total`` x 1000 (a mean over the
  interval's tokens, not a per-request histogram; nothing when no token was made);
- prompt tokens processed (``llamacpp:prompt_tokens_total``, cached ones excluded); prefix-cache
  queries = processed + cached (``llamacpp:prompt_tokens_cached_total``), hits = cached.
"""

from __future__ import annotations

from collector import catalog
from collector.engines.mapping import MS_PER_S, Derived, EngineMap, Ratio
from collector.engines.mapping import adapt as adapt_with
from collector.engines.mapping import derive as derive_with
from collector.parse import ParsedSample

PROMPT_TOKENS = "llamacpp:prompt_tokens_total"
CACHED_TOKENS = "llamacpp:prompt_tokens_cached_total"

LLAMACPP = EngineMap(
    counters={
        "llamacpp:tokens_predicted_total": catalog.TOKEN_COUNT,
        PROMPT_TOKENS: catalog.ENGINE_PROMPT_TOKENS,
        CACHED_TOKENS: catalog.ENGINE_PREFIX_CACHE_HITS,
    },
    sums={catalog.ENGINE_PREFIX_CACHE_QUERIES: (PROMPT_TOKENS, CACHED_TOKENS)},
    connection_gauges=("llamacpp:requests_processing", "llamacpp:requests_deferred"),
    ratios=(
        Ratio(
            catalog.ENGINE_DECODE_MS_PER_TOKEN,
            "llamacpp:tokens_predicted_seconds_total",
            "llamacpp:tokens_predicted_total",
            MS_PER_S,
        ),
        Ratio(catalog.ENGINE_PREFILL_MS_PER_TOKEN, "llamacpp:prompt_seconds_total", PROMPT_TOKENS, MS_PER_S),
    ),
)


def derive(samples: list[ParsedSample]) -> list[ParsedSample]:
    return derive_with(LLAMACPP, samples)


def adapt(samples: list[ParsedSample]) -> Derived:
    """``derive`` plus the histogram families left out as invalid (see ``mapping.adapt``)."""
    return adapt_with(LLAMACPP, samples)
