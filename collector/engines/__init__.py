"""Engine adapters: an engine's own series → the guide's series (catalog names, guide units).

An adapter is a pure function from the parsed samples of one scrape to the *extra* samples it
derives; the originals are always kept as well (custom metrics), so adapters never drop data.

``ADAPTERS[engine](samples)`` gives the derived samples; ``adapt(engine, samples)`` is what the
sidecar calls: it also reports the families left out as invalid and never raises, so that a
target's odd exposition (or a bug here) costs at most its derived series, never the scrape.
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from collector.engines import dynamo, generic, llamacpp, mindie, sglang, tgi, vllm
from collector.engines.mapping import Derived, Dropped, EngineMap
from collector.parse import ParsedSample

Adapter = Callable[[list[ParsedSample]], list[ParsedSample]]
CheckedAdapter = Callable[[list[ParsedSample]], Derived]

ADAPTERS: dict[str, Adapter] = {
    "vllm": vllm.derive,
    "sglang": sglang.derive,
    "tgi": tgi.derive,
    "llamacpp": llamacpp.derive,
    "mindie": mindie.derive,
    "dynamo": dynamo.derive,
    "generic": generic.derive,
}

CHECKED_ADAPTERS: dict[str, CheckedAdapter] = {
    "vllm": vllm.adapt,
    "sglang": sglang.adapt,
    "tgi": tgi.adapt,
    "llamacpp": llamacpp.adapt,
    "mindie": mindie.adapt,
    "dynamo": dynamo.adapt,
    "generic": generic.adapt,
}

# The tables, for what needs more than one scrape (ratios, in the sidecar) and for the mapping
# table in docs/engines.md (``python -m collector.engines.table``).
ENGINE_MAPS: dict[str, EngineMap] = {
    "vllm": vllm.VLLM,
    "sglang": sglang.SGLANG,
    "tgi": tgi.TGI,
    "llamacpp": llamacpp.LLAMACPP,
    "mindie": mindie.MINDIE,
    "dynamo": dynamo.DYNAMO,
    "generic": EngineMap(),
}

ALL_FAMILIES = "*"  # Dropped.family when the adapter failed as a whole


def adapt(engine: str, samples: list[ParsedSample]) -> Derived:
    """The engine's derived samples and dropped families; an exception drops every derived sample.

    The boundary is here, not in each table, because an adapter raising is a bug to log with its
    traceback, while an invalid family is the target's doing and is only counted.
    """
    try:
        return CHECKED_ADAPTERS[engine](samples)
    except Exception as exc:
        logger.opt(exception=exc).error("the {} adapter failed; this scrape derives no guide series", engine)
        return Derived([], (Dropped(ALL_FAMILIES, f"{type(exc).__name__}: {str(exc)[:200]}"),))


__all__ = [
    "ADAPTERS",
    "ALL_FAMILIES",
    "CHECKED_ADAPTERS",
    "ENGINE_MAPS",
    "Adapter",
    "CheckedAdapter",
    "Derived",
    "Dropped",
    "EngineMap",
    "adapt",
]
