"""A histogram as the columns of one ClickHouse row, and as JSON for the sidecar → server hop.

The bucket columns are parallel arrays — ``Array(Int32)`` indexes and ``Array(UInt64)`` counts —
because that is what ``sumMap(keys, counts)`` adds, on ClickHouse 18.16 (no ``Map`` type) as on
26.x; count/sum/min/max/zero_count merge with ``sum``/``min``/``max``. Only non-empty buckets are
written, so a row costs 12 bytes per occupied bucket before compression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sketch.sketch import ExponentialHistogram
from sketch.store import SparseStore

_INT32 = np.iinfo(np.int32)
COLUMNS = (
    "scale",
    "count",
    "sum",
    "min",
    "max",
    "zero_count",
    "positive_keys",
    "positive_counts",
    "negative_keys",
    "negative_counts",
)


@dataclass(frozen=True, slots=True, eq=False)
class SketchColumns:
    """One histogram's row values; arrays are int32 keys (sorted) and uint64 counts."""

    scale: int
    count: int
    sum: float
    min: float
    max: float
    zero_count: int
    positive_keys: np.ndarray
    positive_counts: np.ndarray
    negative_keys: np.ndarray
    negative_counts: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SketchColumns):
            return NotImplemented
        return all(_equal(getattr(self, name), getattr(other, name)) for name in COLUMNS)

    __hash__ = None  # type: ignore[assignment]


def to_columns(histogram: ExponentialHistogram) -> SketchColumns:
    """Row values of a histogram (keys narrowed to Int32: every index fits up to scale 20)."""
    return SketchColumns(
        scale=histogram.scale,
        count=histogram.count,
        sum=histogram.sum,
        min=histogram.min,
        max=histogram.max,
        zero_count=histogram.zero_count,
        positive_keys=_int32(histogram.positive.keys),
        positive_counts=histogram.positive.counts.astype(np.uint64),
        negative_keys=_int32(histogram.negative.keys),
        negative_counts=histogram.negative.counts.astype(np.uint64),
    )


def from_columns(columns: SketchColumns) -> ExponentialHistogram:
    """The histogram a row (or a ``sumMap`` over rows) describes."""
    histogram = ExponentialHistogram(columns.scale)
    histogram.positive = _store(columns.positive_keys, columns.positive_counts)
    histogram.negative = _store(columns.negative_keys, columns.negative_counts)
    histogram.zero_count = int(columns.zero_count)
    histogram.count = int(columns.count)
    histogram.sum = float(columns.sum)
    histogram.min = float(columns.min)
    histogram.max = float(columns.max)
    if histogram.positive.total + histogram.negative.total + histogram.zero_count != histogram.count:
        raise ValueError("bucket counts do not add up to count")
    return histogram


def to_dict(columns: SketchColumns) -> dict[str, Any]:
    """JSON-ready form (lists of ints), e.g. for a sidecar shipping rows over HTTP."""
    return {
        name: value.tolist() if isinstance(value, np.ndarray) else value
        for name in COLUMNS
        for value in (getattr(columns, name),)
    }


def from_dict(data: dict[str, Any]) -> SketchColumns:
    """Inverse of :func:`to_dict`; ``ValueError`` on a missing field or mismatched arrays."""
    try:
        columns = SketchColumns(
            scale=int(data["scale"]),
            count=int(data["count"]),
            sum=float(data["sum"]),
            min=float(data["min"]),
            max=float(data["max"]),
            zero_count=int(data["zero_count"]),
            positive_keys=np.asarray(data["positive_keys"], dtype=np.int32),
            positive_counts=np.asarray(data["positive_counts"], dtype=np.uint64),
            negative_keys=np.asarray(data["negative_keys"], dtype=np.int32),
            negative_counts=np.asarray(data["negative_counts"], dtype=np.uint64),
        )
    except (KeyError, TypeError, OverflowError) as err:  # overflow: a count below 0, a key past int32
        raise ValueError(f"malformed sketch: {err!r}") from None
    if not (0 <= columns.count < 2**64 and 0 <= columns.zero_count < 2**64):
        raise ValueError("malformed sketch: count and zero_count must be in [0, 2**64)")
    from_columns(columns)  # validates scale, shapes and totals
    return columns


def to_otlp_buckets(keys: np.ndarray, counts: np.ndarray) -> tuple[int, list[int]]:
    """OTLP ``ExponentialHistogramDataPoint.Buckets``: ``offset`` = first index, then dense counts."""
    if keys.size == 0:
        return 0, []
    dense = np.zeros(int(keys[-1]) - int(keys[0]) + 1, dtype=np.uint64)
    dense[keys - keys[0]] = counts
    return int(keys[0]), dense.tolist()


def from_otlp_buckets(offset: int, bucket_counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sparse keys and counts of OTLP buckets (same index scheme: nothing to shift)."""
    counts = np.asarray(bucket_counts, dtype=np.uint64)
    present = np.flatnonzero(counts)
    return present.astype(np.int64) + offset, counts[present]


def to_native_spans(keys: np.ndarray, counts: np.ndarray) -> tuple[list[tuple[int, int]], list[int]]:
    """Prometheus native-histogram ``(spans, deltas)`` of one sign, for a schema equal to the scale.

    Prometheus' bucket ``i`` is ``(base**(i-1), base**i]``: our index + 1. A span is
    ``(offset, length)`` — the first span's offset absolute, later ones the gap after the previous
    span — and counts are delta-encoded across spans (prometheus/client_model ``BucketSpan``).
    """
    if keys.size == 0:
        return [], []
    prom = keys.astype(np.int64) + 1
    breaks = np.flatnonzero(np.diff(prom) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [prom.size]))
    spans, previous_end = [], None
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        first = int(prom[start])
        spans.append((first if previous_end is None else first - previous_end, end - start))
        previous_end = int(prom[end - 1]) + 1
    absolute = counts.astype(np.int64)
    deltas = np.concatenate((absolute[:1], np.diff(absolute)))
    return spans, deltas.tolist()


def _int32(keys: np.ndarray) -> np.ndarray:
    if keys.size and (keys[0] < _INT32.min or keys[-1] > _INT32.max):
        raise ValueError("bucket index outside Int32")
    return keys.astype(np.int32)


def _store(keys: np.ndarray, counts: np.ndarray) -> SparseStore:
    # Copies: the histogram adds in place, and must never write into a (frozen) columns record.
    keys = np.array(keys, dtype=np.int64)
    if keys.size > 1 and not np.all(keys[1:] > keys[:-1]):
        raise ValueError("bucket keys must be sorted and unique")
    return SparseStore(keys, np.array(counts, dtype=np.uint64))


def _equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return a == b
