"""Engine adapters: an engine's own series → the guide's series (catalog names, guide units).

An adapter is a pure function from the parsed samples of one scrape to the *extra* samples it
derives; the originals are always kept as well (custom metrics), so adapters never drop data.
"""

from __future__ import annotations

from collections.abc import Callable

from collector.engines import generic, llamacpp, mindie, sglang, tgi, vllm
from collector.parse import ParsedSample

Adapter = Callable[[list[ParsedSample]], list[ParsedSample]]

ADAPTERS: dict[str, Adapter] = {
    "vllm": vllm.derive,
    "sglang": sglang.derive,
    "tgi": tgi.derive,
    "llamacpp": llamacpp.derive,
    "mindie": mindie.derive,
    "generic": generic.derive,
}

__all__ = ["ADAPTERS", "Adapter"]
