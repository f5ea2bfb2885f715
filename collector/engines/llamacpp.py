"""llama.cpp server (``--metrics``) series → the guide's.

llama.cpp exposes counters and gauges only (``llamacpp:*``): no latency or token histograms and
no request counter by status, so TTFT/TPOT/request counts for llama.cpp come from the ingress
proxy. Mapped: generated tokens, and connections = requests processing + deferred.
"""

from __future__ import annotations

from collector import catalog
from collector.engines.mapping import Derived, EngineMap
from collector.engines.mapping import adapt as adapt_with
from collector.engines.mapping import derive as derive_with
from collector.parse import ParsedSample

LLAMACPP = EngineMap(
    counters={"llamacpp:tokens_predicted_total": catalog.TOKEN_COUNT},
    connection_gauges=("llamacpp:requests_processing", "llamacpp:requests_deferred"),
)


def derive(samples: list[ParsedSample]) -> list[ParsedSample]:
    return derive_with(LLAMACPP, samples)


def adapt(samples: list[ParsedSample]) -> Derived:
    """``derive`` plus the histogram families left out as invalid (see ``mapping.adapt``)."""
    return adapt_with(LLAMACPP, samples)
