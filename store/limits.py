"""What ingest accepts: label checks, cardinality limits and a time window; the rest is dropped and counted.

Defined behaviour for bad input (docs/store.md, "Bad input"); every rejection increments
``IngestGuard.dropped[reason]`` and logs one line per batch, never an exception:

- label name not ``[a-zA-Z_][a-zA-Z0-9_]*`` (metric name may hold ``:``), or a name or value that is
  not valid UTF-8 → the series is dropped (``invalid_label``, ``invalid_utf8``);
- a label value over ``max_label_value_bytes`` → dropped (``label_too_long``); more than
  ``max_labels`` labels → dropped (``too_many_labels``);
- the series would be new past ``max_series_per_metric`` (per metric name) or ``max_series_per_target``
  (per ``source``/``instance`` label value), counted per UTC day → dropped (``series_limit_metric``,
  ``series_limit_target``); series already admitted keep flowing;
- a timestamp more than ``max_future_s`` ahead of the clock (clock skew) → that sample is dropped
  (``too_far_in_future``); with ``max_age_s`` set, older ones too (``too_old``).

Kept as they are: NaN, ±Inf and the staleness marker (Prometheus semantics); out-of-order timestamps
(ClickHouse sorts); a repeated (series, timestamp) — within a batch the last value wins, across
batches ReplacingMergeTree keeps the last inserted.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from loguru import logger

from model.labels import METRIC_NAME, Labels, to_labels
from model.series import Sample

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
TARGET_LABELS = ("source", "instance")


@dataclass(frozen=True, slots=True)
class Limits:
    """Ingest limits; ``None`` switches a limit off."""

    max_labels: int | None = 64
    max_label_value_bytes: int | None = 4096
    max_series_per_metric: int | None = 100_000
    max_series_per_target: int | None = 100_000
    max_future_s: float | None = 3600.0
    max_age_s: float | None = None

    def validate(self) -> None:
        for name in ("max_labels", "max_label_value_bytes", "max_series_per_metric", "max_series_per_target"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"store.limits.{name} must be ≥ 1 or null")


def label_problem(labels: Labels, limits: Limits) -> str | None:
    """Why a label set is refused, or None."""
    if limits.max_labels is not None and len(labels) - 1 > limits.max_labels:
        return "too_many_labels"
    for name, value in labels:
        try:
            size = len(value.encode("utf-8"))
            name.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 when decoded
            return "invalid_utf8"
        if not (_METRIC.match(value) if name == METRIC_NAME else _LABEL.match(name)):
            return "invalid_label"
        if limits.max_label_value_bytes is not None and size > limits.max_label_value_bytes:
            return "label_too_long"
    return None


def target_of(labels: Labels) -> str | None:
    """The scrape target a series comes from (its ``source`` or ``instance`` label), if any."""
    return next((v for k, v in labels if k in TARGET_LABELS), None)


class IngestGuard:
    """Cardinality limits per UTC day of the data, and the accepted time window.

    ``guard.admit_series("up", "pod-1", fp, day)`` → None (admitted) or the reason it is not.
    """

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self.dropped: Counter[str] = Counter()
        self._per_metric: defaultdict[tuple[int, str], set[int]] = defaultdict(set)
        self._per_target: defaultdict[tuple[int, str], set[int]] = defaultdict(set)

    def admit_series(self, metric: str, target: str | None, fingerprint: int, day: int) -> str | None:
        """Admit a series on a day unless that would pass a limit; an admitted series stays admitted."""
        per_metric = self._per_metric[(day, metric)]
        per_target = self._per_target[(day, target)] if target is not None else None
        limit = self.limits.max_series_per_metric
        if limit is not None and fingerprint not in per_metric and len(per_metric) >= limit:
            return "series_limit_metric"
        limit = self.limits.max_series_per_target
        over_target = per_target is not None and limit is not None and len(per_target) >= limit
        if over_target and fingerprint not in per_target:  # type: ignore[operator]
            return "series_limit_target"
        per_metric.add(fingerprint)
        if per_target is not None:
            per_target.add(fingerprint)
        if len(self._per_metric) > 4 * 10_000:  # forget days long gone (keys hold the day first)
            self._forget_before(day - 2)
        return None

    def _forget_before(self, day: int) -> None:
        for table in (self._per_metric, self._per_target):
            for key in [k for k in table if k[0] < day]:
                del table[key]

    def time_bounds_ms(self) -> tuple[int | None, int | None]:
        """(oldest, newest) timestamps accepted now, None where unbounded."""
        now = self._clock()
        low = int((now - self.limits.max_age_s) * 1000) if self.limits.max_age_s is not None else None
        high = int((now + self.limits.max_future_s) * 1000) if self.limits.max_future_s is not None else None
        return low, high

    def count(self, reasons: Counter[str]) -> None:
        """Add a batch's rejections to the totals and log them in one line."""
        if reasons:
            self.dropped.update(reasons)
            logger.warning("ingest dropped samples: {}", dict(reasons))


def counter_samples(
    name: str, counts: Mapping[str, int], ts_ms: int, key: str = "reason", **labels: str
) -> list[Sample]:
    """Counters as samples the store can keep about itself, one series per reason (label ``key``).

    ``counter_samples("infersight_ingest_dropped_samples_total", writer.guard.dropped, now_ms)``.
    """
    return [
        Sample(to_labels({METRIC_NAME: name, key: reason, **labels}), ts_ms, float(count))
        for reason, count in sorted(counts.items())
    ]
