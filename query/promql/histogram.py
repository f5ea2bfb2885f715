"""``histogram_quantile`` over classic ``le`` buckets, with Prometheus 2.42's edge cases.

Buckets are grouped by all labels but ``le`` (the metric name included, so two histograms never
mix); the result drops ``le`` and the name. Per group and step: no ``+Inf`` bucket or fewer than two
buckets give NaN, equal bounds are merged, counts are made monotonic, a quantile in the ``+Inf``
bucket gives the highest finite bound, and a first bucket with bound <= 0 is returned as is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from model.labels import METRIC_NAME
from query.promql import budget
from query.promql.blocks import Block, Col, IntArray, ScalarBlock, VectorBlock, dedupe, label_key, stack_rows
from query.promql.gomath import go_div

BUCKET_LABEL = "le"


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Quantile ``q`` from ``(upper_bound, cumulative_count)`` pairs, as Prometheus' bucketQuantile."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    highest = -math.inf
    for b in merged:
        if b[1] > highest:
            highest = b[1]
        elif b[1] < highest:
            b[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    counts = [b[1] for b in merged[:-1]]
    idx = _search(counts, rank)
    if idx == len(merged) - 1:
        return merged[-2][0]
    if idx == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[idx][0], merged[idx][1]
    if idx > 0:
        start = merged[idx - 1][0]
        count -= merged[idx - 1][1]
        rank -= merged[idx - 1][1]
    return start + (end - start) * go_div(rank, count)


def _search(counts: list[float], rank: float) -> int:
    """Go's ``sort.Search``: first index with ``counts[i] >= rank`` (binary search, NaNs included)."""
    lo, hi = 0, len(counts)
    while lo < hi:
        mid = (lo + hi) // 2
        if not counts[mid] >= rank:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _upper_bound(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def histogram_quantile(node: Any, args: list[Block], ts: IntArray) -> Block:
    phi, vec = args[0], args[1]
    assert isinstance(phi, ScalarBlock)
    assert isinstance(vec, VectorBlock)
    groups: dict[tuple, tuple[dict[str, str], list[tuple[float, Col]]]] = {}
    for c in vec.cols:
        budget.tick()
        bound = _upper_bound(c.labels.get(BUCKET_LABEL))
        if bound is None:
            continue
        key = label_key({k: v for k, v in c.labels.items() if k != BUCKET_LABEL})
        if key not in groups:
            out_labels = {k: v for k, v in c.labels.items() if k not in (BUCKET_LABEL, METRIC_NAME)}
            groups[key] = (out_labels, [])
        groups[key][1].append((bound, c))
    cols = []
    for out_labels, members in groups.values():
        bounds = [b for b, _ in members]
        values = stack_rows([c.values for _, c in members])
        masks = stack_rows([c.mask for _, c in members])
        present = np.asarray(masks.any(axis=0))
        fast = _all_steps(phi.values, bounds, values, masks)
        if fast is not None:
            cols.append(Col(out_labels, fast, present))
            continue
        result = np.zeros(len(ts))
        for i in np.flatnonzero(present).tolist():
            budget.tick()
            rows = np.flatnonzero(masks[:, i]).tolist()
            result[i] = bucket_quantile(
                float(phi.values[i]), [(bounds[r], float(values[r, i])) for r in rows]
            )
        cols.append(Col(out_labels, result, present))
    return VectorBlock(dedupe(cols))


def _all_steps(
    phi: np.ndarray, bounds: list[float], values: np.ndarray, masks: np.ndarray
) -> np.ndarray | None:
    """``bucket_quantile`` of one group at every step in numpy, for the common case only.

    Applies when every bucket is present at every step where any is, bounds are distinct, the
    highest is +Inf and all counts and quantiles are finite (``None`` otherwise: the scalar path).
    The arithmetic is the scalar path's, operation for operation, so results are identical.
    """
    present = np.asarray(masks.any(axis=0))
    if len(bounds) < 2 or not (masks == present).all() or len(set(bounds)) != len(bounds):
        return None
    order = np.argsort(bounds, kind="stable")
    upper = np.asarray(bounds, dtype=np.float64)[order]
    if upper[-1] != math.inf:
        return None
    counts = values[order][:, present]
    q = phi[present]
    if not (np.isfinite(counts).all() and np.isfinite(q).all()):
        return None
    counts = np.maximum.accumulate(counts, axis=0)  # ensureMonotonic, exact for finite counts
    observations = counts[-1]
    rank = q * observations
    idx = (counts[:-1] < rank).sum(axis=0)  # sort.Search on monotonic counts
    last = len(upper) - 1
    below = np.maximum(idx - 1, 0)
    cols = np.arange(counts.shape[1])
    prev_count = np.where(idx > 0, counts[below, cols], 0.0)
    start = np.where(idx > 0, upper[below], 0.0)
    end = upper[np.minimum(idx, last)]
    with np.errstate(all="ignore"):
        # go_div: x/0 is ±Inf, 0/0 NaN, as IEEE numpy division
        inside = start + (end - start) * (
            (rank - prev_count) / (counts[np.minimum(idx, last), cols] - prev_count)
        )
    out = np.where(idx == last, upper[last - 1], inside)
    out = np.where((idx == 0) & (upper[0] <= 0), upper[0], out)
    out = np.where(observations == 0, math.nan, out)
    out = np.where(q < 0, -math.inf, np.where(q > 1, math.inf, out))
    result = np.zeros(len(present))
    result[present] = out
    return result


__all__ = ["bucket_quantile", "histogram_quantile"]
