"""Parsed samples → model Samples: identity labels on every series, collisions kept aside.

As Prometheus does with ``honor_labels: false``: a target label that collides with a label the
collector attaches (the identity labels) is kept as ``exported_<name>`` (``exported_exported_...``
if that too is taken), so neither the identity nor the target's own information is lost. vLLM's
``vllm:prompt_tokens_by_source_total{source=...}`` is a real case: ``source`` is also the pod.
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.parse import ParsedSample
from model.labels import METRIC_NAME, to_labels
from model.series import Sample


def with_identity(labels: dict[str, str], identity: dict[str, str]) -> dict[str, str]:
    """``labels`` plus ``identity``; a colliding target label moves to ``exported_<name>``."""
    out = dict(labels)
    for name, value in identity.items():
        if name in out:
            moved = "exported_" + name
            while moved in out:
                moved = "exported_" + moved
            out[moved] = out.pop(name)
        out[name] = value
    return out


def to_samples(parsed: Iterable[ParsedSample], identity: dict[str, str], scrape_ts_ms: int) -> list[Sample]:
    """One Sample per parsed sample; its own timestamp wins over the scrape's start time."""
    out: list[Sample] = []
    for p in parsed:
        labels = with_identity(p.labels, identity)
        labels[METRIC_NAME] = p.name
        out.append(Sample(to_labels(labels), p.ts_ms if p.ts_ms is not None else scrape_ts_ms, p.value))
    return out
