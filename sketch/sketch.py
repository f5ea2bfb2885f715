"""A mergeable exponential histogram with a fixed scale: quantiles within a relative error bound.

Rank convention: the q-quantile of n values is the value of 1-based rank ``ceil(q·n)`` (at least
1) — the smallest x with at least q·n values ≤ x, numpy's ``quantile(method="inverted_cdf")``.
The sketch returns the representative of the bucket holding that rank, clamped to [min, max], so
for positive (or negative) data it is within ``relative_error`` (0.54 % at scale 6) of the exact
answer, however many sketches were merged. q = 0 and q = 1 return min and max exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from sketch.mapping import DEFAULT_SCALE, mapping_for
from sketch.store import SparseStore


class ExponentialHistogram:
    """Counts of values per exponential bucket, plus count/sum/min/max.

    >>> h = ExponentialHistogram()
    >>> h.add_many(np.array([12.0, 15.5, 230.0]))
    3
    >>> abs(h.quantile(0.5) - 15.5) <= 15.5 * h.relative_error
    True
    """

    __slots__ = ("count", "mapping", "max", "min", "negative", "positive", "sum", "zero_count")

    def __init__(self, scale: int = DEFAULT_SCALE) -> None:
        self.mapping = mapping_for(scale)
        self.positive = SparseStore()
        self.negative = SparseStore()  # by magnitude, as OTel's negative buckets
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @property
    def scale(self) -> int:
        return self.mapping.scale

    @property
    def relative_error(self) -> float:
        return self.mapping.relative_error

    @property
    def size_bytes(self) -> int:
        """Memory held by the bucket counters, bytes."""
        return self.positive.size_bytes + self.negative.size_bytes

    def add(self, value: float) -> bool:
        """Add one value; False (and nothing added) for NaN or ±inf."""
        return self.add_many(np.array([value], dtype=np.float64)) == 1

    def add_many(self, values: np.ndarray | Sequence[float]) -> int:
        """Add every finite value (vectorised); returns how many were added (NaN and ±inf are skipped)."""
        data = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(data)
        if not finite.all():
            data = data[finite]
        if data.size == 0:
            return 0
        positive = data > 0
        negative = data < 0
        if positive.all():
            self.positive.add_indexes(self.mapping.to_indexes(data))
        else:
            self.positive.add_indexes(self.mapping.to_indexes(data[positive]))
            self.negative.add_indexes(self.mapping.to_indexes(-data[negative]))
            self.zero_count += int(data.size - positive.sum() - negative.sum())
        self.count += int(data.size)
        self.sum += float(data.sum())
        self.min = min(self.min, float(data.min()))
        self.max = max(self.max, float(data.max()))
        return int(data.size)

    def merge(self, other: ExponentialHistogram) -> None:
        """Add another histogram's counts into this one (at the lower of the two scales)."""
        if other.scale < self.scale:
            self.downscale(other.scale)
        elif other.scale > self.scale:
            other = other.downscaled(self.scale)
        self.positive.merge(other.positive)
        self.negative.merge(other.negative)
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @classmethod
    def merged(cls, histograms: Iterable[ExponentialHistogram]) -> ExponentialHistogram:
        """One histogram of all: one sort over every bucket (36,000 windows in milliseconds)."""
        items = list(histograms)
        scale = min((h.scale for h in items), default=DEFAULT_SCALE)
        items = [h if h.scale == scale else h.downscaled(scale) for h in items]
        out = cls(scale)
        out.positive = SparseStore.merged(h.positive for h in items)
        out.negative = SparseStore.merged(h.negative for h in items)
        out.zero_count = sum(h.zero_count for h in items)
        out.count = sum(h.count for h in items)
        out.sum = math.fsum(h.sum for h in items)
        out.min = min((h.min for h in items), default=math.inf)
        out.max = max((h.max for h in items), default=-math.inf)
        return out

    def downscale(self, scale: int) -> None:
        """Lower the resolution in place to ``scale`` (only needed to merge with a coarser histogram)."""
        by = self.scale - scale
        self.positive = self.positive.downscaled(by)
        self.negative = self.negative.downscaled(by)
        self.mapping = mapping_for(scale)

    def downscaled(self, scale: int) -> ExponentialHistogram:
        out = self.copy()
        out.downscale(scale)
        return out

    def copy(self) -> ExponentialHistogram:
        out = ExponentialHistogram(self.scale)
        out.positive, out.negative = self.positive.copy(), self.negative.copy()
        out.zero_count, out.count, out.sum = self.zero_count, self.count, self.sum
        out.min, out.max = self.min, self.max
        return out

    def quantile(self, q: float) -> float:
        """The q-quantile (0 ≤ q ≤ 1); NaN when empty."""
        return float(self.quantiles([q])[0])

    def quantiles(self, qs: Sequence[float] | np.ndarray) -> np.ndarray:
        """Several quantiles at once (one pass over the buckets); NaN for every q when empty."""
        q = np.asarray(qs, dtype=np.float64)
        if np.any((q < 0) | (q > 1) | np.isnan(q)):
            raise ValueError(f"quantiles must be in [0, 1], got {qs}")
        if self.count == 0:
            return np.full(q.shape, np.nan)
        n = self.count
        ranks = np.clip(np.ceil(q * n), 1, n)  # 1-based, inverted CDF
        # Ascending value order: negative buckets from the largest magnitude, zero, positive buckets.
        values = np.concatenate(
            (
                -self.mapping.representatives(self.negative.keys[::-1]),
                [0.0],
                self.mapping.representatives(self.positive.keys),
            )
        )
        counts = np.concatenate((self.negative.counts[::-1], [self.zero_count], self.positive.counts))
        cumulative = np.cumsum(counts, dtype=np.float64)
        out = values[np.searchsorted(cumulative, ranks, side="left")]
        out = np.clip(out, self.min, self.max)
        out[ranks == 1] = self.min
        out[ranks == n] = self.max
        return out

    def same_as(self, other: ExponentialHistogram, sum_tol: float = 1e-12) -> bool:
        """Equal buckets, counts, min and max; sums equal up to float rounding.

        A float sum depends on the order of additions (merges change it), and with values of both
        signs the difference can dwarf the sum itself, so the tolerance scales with the largest
        magnitude times the count, not with the sum: ``|Δsum| ≤ sum_tol · count · max|v|``.
        """
        largest = max(abs(self.min), abs(self.max)) if self.count else 0.0
        return (
            self.scale == other.scale
            and self.positive == other.positive
            and self.negative == other.negative
            and (self.zero_count, self.count, self.min, self.max)
            == (other.zero_count, other.count, other.min, other.max)
            and abs(self.sum - other.sum) <= sum_tol * self.count * largest
        )

    def __repr__(self) -> str:
        return (
            f"ExponentialHistogram(scale={self.scale}, count={self.count}, "
            f"buckets={len(self.positive) + len(self.negative)})"
        )
