"""``/api/v1/metadata`` from what the store knows: metric names, and the types their names imply.

Prometheus answers from its scrape targets' ``# TYPE``/``# HELP`` lines; the store keeps samples,
not those lines, so types are read from the naming conventions (``_bucket``+``_count`` → histogram
family, ``_total`` → counter) and everything else is ``unknown``, with empty help and unit. That is
what Grafana's query builder needs to label metrics; it never guesses wrong, only says less.
"""

from __future__ import annotations

MetadataEntry = dict[str, str]


def _entry(kind: str) -> list[MetadataEntry]:
    return [{"type": kind, "help": "", "unit": ""}]


def from_names(names: list[str]) -> dict[str, list[MetadataEntry]]:
    """Metadata by family name, as Prometheus' ``data`` member: ``{"up": [{"type": …}]}``."""
    present = set(names)
    families: dict[str, list[MetadataEntry]] = {}
    histogram_parts: set[str] = set()
    for name in sorted(present):
        base = name.removesuffix("_bucket")
        if base != name and f"{base}_count" in present:
            families[base] = _entry("histogram")
            histogram_parts.update((name, f"{base}_count", f"{base}_sum"))
    for name in sorted(present - histogram_parts):
        families[name] = _entry("counter" if name.endswith("_total") else "unknown")
    return dict(sorted(families.items()))


def select(
    metadata: dict[str, list[MetadataEntry]], metric: str | None, limit: int
) -> dict[str, list[MetadataEntry]]:
    """Prometheus' filters: only ``metric`` when given; at most ``limit`` metrics when ``limit >= 0``."""
    if metric:
        metadata = {metric: metadata[metric]} if metric in metadata else {}
    if limit >= 0:
        metadata = dict(list(metadata.items())[:limit])
    return metadata
