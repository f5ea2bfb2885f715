"""Many sketches at once: one numpy pass over the values of every window, then one merge for all.

A window of a few dozen requests is too small for numpy to pay off one window at a time (each
call costs about a microsecond whatever its size), so the windows that close together are
sketched together: values concatenated, bucket indexes computed once, and counts grouped by
(window, bucket) with one sort. Per window only the slicing of the results is left in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sketch.codec import SketchColumns
from sketch.mapping import DEFAULT_SCALE, ExponentialMapping, mapping_for
from sketch.store import combine

_EMPTY_KEYS = np.empty(0, dtype=np.int32)
_EMPTY_COUNTS = np.empty(0, dtype=np.uint64)
_ZERO_KEY = np.zeros(1, dtype=np.int32)  # placeholder key of the zero bucket (its value is 0 by sign)


def sketch_groups(
    values: np.ndarray, lengths: Sequence[int] | np.ndarray, scale: int = DEFAULT_SCALE
) -> list[SketchColumns | None]:
    """Columns of one sketch per consecutive group of ``values`` (``lengths[i]`` values each).

    Equal to ``to_columns`` of a histogram per group; ``None`` for a group with no finite value.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    groups = np.repeat(np.arange(lengths.size), lengths)
    data = np.asarray(values, dtype=np.float64)
    if data.size != groups.size:
        raise ValueError("lengths must add up to the number of values")
    finite = np.isfinite(data)
    if not finite.all():
        data, groups = data[finite], groups[finite]
    n_groups = lengths.size
    counts = np.bincount(groups, minlength=n_groups)
    sums = np.bincount(groups, weights=data, minlength=n_groups)
    present = np.flatnonzero(counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[present]
    mins = np.full(n_groups, np.inf)
    maxs = np.full(n_groups, -np.inf)
    if data.size:
        mins[present] = np.minimum.reduceat(data, starts)
        maxs[present] = np.maximum.reduceat(data, starts)
    zeros = np.bincount(groups[data == 0], minlength=n_groups)
    mapping = mapping_for(scale)
    positive = _grouped_buckets(mapping, data, groups, data > 0, n_groups)
    negative = _grouped_buckets(mapping, -data, groups, data < 0, n_groups)
    out: list[SketchColumns | None] = [None] * n_groups
    # Python scalars once, not per window: a numpy scalar lookup costs ~100 ns each.
    count_l, sum_l, min_l, max_l, zero_l = (a.tolist() for a in (counts, sums, mins, maxs, zeros))
    pos_keys, pos_counts = positive
    neg_keys, neg_counts = negative
    for g in present.tolist():
        out[g] = SketchColumns(
            scale,
            count_l[g],
            sum_l[g],
            min_l[g],
            max_l[g],
            zero_l[g],
            pos_keys[g],
            pos_counts[g],
            neg_keys[g],
            neg_counts[g],
        )
    return out


def merge_columns(columns: Sequence[SketchColumns]) -> SketchColumns:
    """One sketch of many (same scale): bucket counts added key-wise, as ClickHouse's ``sumMap`` does."""
    scales = {c.scale for c in columns}
    if len(scales) != 1:
        raise ValueError(f"merge_columns needs one scale, got {sorted(scales)}")
    pos_keys, pos_counts = combine([c.positive_keys for c in columns], [c.positive_counts for c in columns])
    neg_keys, neg_counts = combine([c.negative_keys for c in columns], [c.negative_counts for c in columns])
    return SketchColumns(
        scale=scales.pop(),
        count=sum(c.count for c in columns),
        sum=float(np.sum([c.sum for c in columns])),
        min=min(c.min for c in columns),
        max=max(c.max for c in columns),
        zero_count=sum(c.zero_count for c in columns),
        positive_keys=pos_keys.astype(np.int32),
        positive_counts=pos_counts,
        negative_keys=neg_keys.astype(np.int32),
        negative_counts=neg_counts,
    )


def quantiles_many(sketches: Sequence[SketchColumns], qs: Sequence[float]) -> np.ndarray:
    """``quantiles(qs)`` of every sketch (one scale) as a (sketches x qs) array, in one numpy pass.

    The same answers as ``from_columns(c).quantiles(qs)`` for each, without a Python loop over the
    buckets: all sketches' buckets are laid end to end in value order, one cumulative sum runs
    over them, and each sketch's ranks are offset by the counts before it (one ``searchsorted``).
    """
    q = np.asarray(qs, dtype=np.float64)
    if np.any((q < 0) | (q > 1) | np.isnan(q)):
        raise ValueError(f"quantiles must be in [0, 1], got {qs}")
    if not sketches:
        return np.empty((0, q.size))
    scales = {c.scale for c in sketches}
    if len(scales) != 1:
        raise ValueError(f"quantiles_many needs one scale, got {sorted(scales)}")
    mapping = mapping_for(scales.pop())
    zeros = np.array([c.zero_count for c in sketches], dtype=np.uint64)
    keys: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for i, c in enumerate(sketches):  # value order: negatives by falling magnitude, zero, positives
        keys += [c.negative_keys[::-1], _ZERO_KEY, c.positive_keys]
        counts += [c.negative_counts[::-1], zeros[i : i + 1], c.positive_counts]
    lengths = np.array([k.size for k in keys], dtype=np.int64)
    signs = np.repeat(np.tile(np.array([-1.0, 0.0, 1.0]), len(sketches)), lengths)
    values = mapping.representatives(np.concatenate(keys)) * signs
    cumulative = np.cumsum(np.concatenate(counts), dtype=np.float64)
    n = np.array([c.count for c in sketches], dtype=np.float64)
    before = np.concatenate(([0.0], np.cumsum(n)[:-1]))
    ranks = np.clip(np.ceil(np.outer(n, q)), 1.0, n[:, None])  # 1-based, inverted CDF
    out = values[np.searchsorted(cumulative, ranks + before[:, None], side="left")]
    lows = np.array([c.min for c in sketches])[:, None]
    highs = np.array([c.max for c in sketches])[:, None]
    out = np.clip(out, lows, highs)
    out = np.where(ranks == 1, lows, out)
    out = np.where(ranks == n[:, None], highs, out)
    out[n == 0] = np.nan
    return out


def _grouped_buckets(
    mapping: ExponentialMapping, magnitudes: np.ndarray, groups: np.ndarray, mask: np.ndarray, n_groups: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per group: sorted bucket keys (int32) and counts (uint64) of the masked values."""
    keys_out = [_EMPTY_KEYS] * n_groups
    counts_out = [_EMPTY_COUNTS] * n_groups
    if not mask.any():
        return keys_out, counts_out
    indexes = mapping.to_indexes(magnitudes[mask])
    owner = groups[mask]
    low = int(indexes.min())
    span = int(indexes.max()) - low + 1
    # One int64 per (group, bucket). Values arrive grouped, so a stable sort (timsort) runs over
    # presorted stretches: ~4x faster here than np.unique's quicksort.
    composite = np.sort(owner * span + (indexes - low), kind="stable")
    firsts = np.flatnonzero(np.concatenate(([True], composite[1:] != composite[:-1])))
    tally = np.diff(np.append(firsts, composite.size))
    composite = composite[firsts]
    group_of = composite // span
    keys = (composite - group_of * span + low).astype(np.int32)
    tally = tally.astype(np.uint64)
    bounds = np.searchsorted(group_of, np.arange(n_groups + 1))
    for g in np.flatnonzero(np.diff(bounds)).tolist():
        keys_out[g] = keys[bounds[g] : bounds[g + 1]]
        counts_out[g] = tally[bounds[g] : bounds[g + 1]]
    return keys_out, counts_out
