"""JSON wire form of a batch of samples, for sidecars that ship to ``infersight server`` over HTTP.

Values travel as strings so NaN, ±Inf and Prometheus' staleness marker survive JSON.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from model.labels import to_labels
from model.series import STALE_NAN, Sample, is_stale_nan


def _encode_value(value: float) -> str:
    if is_stale_nan(value):
        return "stale"
    if math.isnan(value):
        return "NaN"
    return repr(value)


def _decode_value(text: str) -> float:
    return STALE_NAN if text == "stale" else float(text)


def encode_batch(batch: list[Sample]) -> dict[str, Any]:
    """``{"series": [{"labels": {...}, "samples": [[ts_ms, "value"], ...]}, ...]}``."""
    grouped: dict[tuple[tuple[str, str], ...], list[list[Any]]] = defaultdict(list)
    for sample in batch:
        grouped[sample.labels].append([sample.ts_ms, _encode_value(sample.value)])
    return {"series": [{"labels": dict(labels), "samples": points} for labels, points in grouped.items()]}


def decode_batch(body: Any) -> list[Sample]:
    """Inverse of ``encode_batch``; raises ValueError naming what is malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("series"), list):
        raise ValueError('body must be an object with a "series" list')
    out: list[Sample] = []
    for i, entry in enumerate(body["series"]):
        try:
            labels = entry["labels"]
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
                raise TypeError("label names and values must be strings")
            canonical = to_labels(labels)
            out.extend(Sample(canonical, int(ts), _decode_value(v)) for ts, v in entry["samples"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"series[{i}]: {err}") from None
    return out
