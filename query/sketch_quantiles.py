"""Quantiles of merged sketches, per period: shared by the sketch API and the PromQL sketch series.

A period's rows come from ClickHouse already merged with ``sumMap`` (one row per scale); rows of
several scales (only if the scale setting changed) are merged at the lowest one here.
"""

from __future__ import annotations

import numpy as np

from sketch import ExponentialHistogram, SketchColumns, from_columns, to_columns
from sketch.batch import quantiles_many
from store.sketches import MergedSketch


def to_columns_of(row: MergedSketch) -> SketchColumns:
    return SketchColumns(
        scale=row.scale,
        count=row.count,
        sum=row.sum,
        min=row.min,
        max=row.max,
        zero_count=row.zero_count,
        positive_keys=row.positive_keys,
        positive_counts=row.positive_counts,
        negative_keys=row.negative_keys,
        negative_counts=row.negative_counts,
    )


def _one_scale(parts: list[SketchColumns]) -> SketchColumns:
    if len(parts) == 1:
        return parts[0]
    return to_columns(ExponentialHistogram.merged(from_columns(c) for c in parts))


def period_quantiles(
    merged: list[MergedSketch], qs: tuple[float, ...]
) -> tuple[list[int], list[SketchColumns], np.ndarray]:
    """Period starts (ms, ascending), each period's sketch, and a (periods x qs) array of quantiles."""
    by_period: dict[int, list[SketchColumns]] = {}
    for row in merged:
        by_period.setdefault(row.period_start_ms, []).append(to_columns_of(row))
    starts = sorted(by_period)
    sketches = [_one_scale(by_period[start]) for start in starts]
    # One numpy pass per scale (a 15-day span at 1 min is 21,600 periods).
    values = np.full((len(sketches), len(qs)), np.nan)
    for scale in {c.scale for c in sketches}:
        chosen = [i for i, c in enumerate(sketches) if c.scale == scale]
        values[chosen] = quantiles_many([sketches[i] for i in chosen], qs)
    return starts, sketches, values
