"""Checks at the door: what the store would refuse, refused before a request is acknowledged.

Why: the server acknowledges a request once it is in the ingest log and inserts many requests in
one block later. A sample the store cannot hold (a timestamp outside what the samples table's types
and partition key can represent, a label set that is not valid) would then fail a block that also
carries other clients' acknowledged samples. Refusing it at the door, with a 400 that names the
series and the reason, keeps one client's bad data that client's problem — as Prometheus' own
receiver answers 400 (``out of bounds``, ``invalid labels``) for such a request.

Semantics, as Prometheus 2.42's remote-write handler: one refused sample refuses the whole request
(Prometheus rolls the request's appender back and answers 400; the sender drops the request and
never retries it), so a request is stored whole or not at all. NaN, ±Inf and the staleness marker
are values like any other.

What is refused, with its reason (the writer's guard uses the same names, ``store.limits``):

- ``timestamp_out_of_range``: before 1970-01-01 or after 2105-12-31 23:59:59.999 UTC. The samples
  table is partitioned by ``toDate(toDateTime(intDiv(ts_ms, 1000)))``: ``DateTime`` is unsigned 32-bit
  seconds (to 2106-02-07; later stamps saturate on chDB and wrap on 18.16, landing in a wrong
  partition that retention then drops), and 18.16's date table ends with 2105 (its last second,
  in 2106-02-07, became ``0000-00-00``). The series table's ``day`` is a ``Date`` (unsigned
  16-bit days from 1970): chDB refuses the whole insert for a day before 1970, 18.16 wraps it.
  The bounds assume the server's time zone is UTC, as the deployments set it;
- ``too_far_in_future`` / ``too_old``: outside the guard's window (``Limits.max_future_s``,
  ``Limits.max_age_s``) by the server's clock;
- ``invalid_utf8``, ``invalid_label`` (name not ``[a-zA-Z_][a-zA-Z0-9_]*``, metric name not
  ``[a-zA-Z_:][a-zA-Z0-9_:]*``, an empty name), ``duplicate_label``, ``missing_metric_name``,
  ``too_many_labels``, ``label_too_long``;
- ``too_many_samples`` / ``too_many_series``: a request over ``max_samples_per_request`` or
  ``max_series_per_request`` (``check_counts``). Senders send a few thousand samples a request
  (Prometheus 2,000, vmagent 10,000); without a cap a request within the decoded-size bound (32 MiB
  of two-byte samples) costs about a gigabyte of arrays before anything else is checked.

Cardinality limits (``series_limit_*``) stay the writer's: they depend on what other requests
brought, so they drop and count at insert rather than refuse.

    admission = Admission(writer.guard)
    refusal = admission.check_samples(batch)          # None: admit
    refusal = admission.check_columns(labels, index, ts_ms)
    if refusal is not None: return 400, str(refusal)  # "out of bounds: series {...}: timestamp ..."
    refusal = admission.check_counts(series=n_series, samples=n_samples)  # before decoding them
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from model.labels import METRIC_NAME, Labels
from model.series import Sample
from model.times import MAX_TIME_MS, MIN_TIME_MS
from store.limits import IngestGuard, Limits, label_problem

__all__ = [
    "DEFAULT_MAX_SAMPLES_PER_REQUEST",
    "DEFAULT_MAX_SERIES_PER_REQUEST",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "Admission",
    "Refusal",
    "RefusedSeriesError",
    "count_refusal",
    "format_series",
    "in_time_window",
    "label_refusal",
    "time_refusal",
]

T = TypeVar("T")

# What the samples and series tables can hold (see the module docstring): DateTime's range in ms.
TS_MIN_MS = MIN_TIME_MS
TS_MAX_MS = MAX_TIME_MS  # 2105-12-31T23:59:59.999Z

# Generous: hundreds of times what senders send in one request, far below what costs memory.
DEFAULT_MAX_SAMPLES_PER_REQUEST = 1_000_000
DEFAULT_MAX_SERIES_PER_REQUEST = 250_000

# Prometheus' words for each reason, first in the 400's text.
_PHRASES = {
    "timestamp_out_of_range": "out of bounds",
    "too_far_in_future": "out of bounds",
    "too_old": "out of bounds",
    "invalid_utf8": "invalid labels",
    "invalid_label": "invalid labels",
    "duplicate_label": "invalid labels",
    "missing_metric_name": "invalid labels",
    "too_many_labels": "too many labels",
    "label_too_long": "label value too long",
    "too_many_samples": "request too large",
    "too_many_series": "request too large",
}
_SHOWN_VALUE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: the reason (a counter label), the first series it applies to, and
    a detail for the sender (which label, which timestamp)."""

    reason: str
    series: Labels
    detail: str

    def __str__(self) -> str:
        phrase = _PHRASES.get(self.reason, "refused")
        if not self.series:  # a refusal of the request as a whole (its size)
            return f"{phrase} ({self.reason}): {self.detail}"
        return f"{phrase} ({self.reason}): series {format_series(self.series)}: {self.detail}"


class RefusedSeriesError(ValueError):
    """A label set refused while decoding (carries the ``Refusal``)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal
        self.samples = 0  # the request's samples, where the decoder knew them when it refused


def format_series(labels: Labels | Sequence[tuple[str, str]]) -> str:
    """``{__name__="up", job="a"}``, bytes that were not UTF-8 shown as ``\\xNN``, long values cut."""
    parts = []
    for name, value in labels:
        shown = value if len(value) <= _SHOWN_VALUE_CHARS else value[:_SHOWN_VALUE_CHARS] + "…"
        parts.append(f"{_printable(name)}={_quoted(shown)}")
    return "{" + ", ".join(parts) + "}"


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{_printable(escaped)}"'


def label_refusal(labels: Labels, limits: Limits) -> Refusal | None:
    """The refusal of a label set (``store.limits.label_problem`` plus a metric name required)."""
    problem = label_problem(labels, limits)
    if problem is not None:
        return Refusal(problem, labels, _label_detail(problem, labels, limits))
    if not any(name == METRIC_NAME for name, _ in labels):
        return Refusal("missing_metric_name", labels, "no __name__ label (or an empty one)")
    return None


def _label_detail(problem: str, labels: Labels, limits: Limits) -> str:
    if problem == "too_many_labels":
        return f"{len(labels) - 1} labels besides __name__, limit {limits.max_labels}"
    if problem == "label_too_long":
        return f"a label value is over {limits.max_label_value_bytes} bytes"
    if problem == "invalid_utf8":
        return "a label name or value is not valid UTF-8"
    bad = next(
        (name for name, value in labels if label_problem(((name, value),), Limits(None, None)) is not None),
        None,
    )
    if bad == METRIC_NAME:
        return "the metric name does not match [a-zA-Z_:][a-zA-Z0-9_:]*"
    return f"label name {_quoted(bad or '')} does not match [a-zA-Z_][a-zA-Z0-9_]*"


def in_time_window(items: Sequence[T], ts_ms: Callable[[T], int], guard: IngestGuard | None) -> list[T]:
    """The items dated where a sample may be: within the schema's range and ``guard``'s window
    (none: the range only). For what is dropped one by one (exemplars, sketch rows) rather than
    refusing a request, as samples are."""
    low, high = guard.time_bounds_ms() if guard is not None else (None, None)
    first = TS_MIN_MS if low is None else max(TS_MIN_MS, low)
    last = TS_MAX_MS if high is None else min(TS_MAX_MS, high)
    return [item for item in items if first <= ts_ms(item) <= last]


def time_refusal(
    labels: Sequence[Labels], index: np.ndarray, ts_ms: np.ndarray, bounds: tuple[int | None, int | None]
) -> Refusal | None:
    """The refusal of the first sample outside the schema's range or the guard's window ``bounds``
    (oldest, newest accepted; None: open); ``labels[index[i]]`` owns ``ts_ms[i]``."""
    if len(ts_ms) == 0:
        return None
    ts = np.asarray(ts_ms, np.int64)
    low_ts, high_ts = int(ts.min()), int(ts.max())
    low, high = bounds
    checks = [
        ("timestamp_out_of_range", TS_MIN_MS, TS_MAX_MS),
        ("too_old", low, None),
        ("too_far_in_future", None, high),
    ]
    for reason, lo, hi in checks:
        if (lo is not None and low_ts < lo) or (hi is not None and high_ts > hi):
            outside = np.zeros(len(ts), bool)
            if lo is not None:
                outside |= ts < lo
            if hi is not None:
                outside |= ts > hi
            first = int(np.argmax(outside))
            stamp = int(ts[first])
            return Refusal(reason, labels[int(index[first])], _time_detail(reason, stamp, lo, hi))
    return None


def _time_detail(reason: str, stamp: int, lo: int | None, hi: int | None) -> str:
    if reason == "timestamp_out_of_range":
        return (
            f"timestamp {stamp} ms outside what the store holds "
            f"[{TS_MIN_MS}, {TS_MAX_MS}] (1970-01-01 to 2105-12-31 UTC)"
        )
    if reason == "too_old":
        return f"timestamp {stamp} ms older than the oldest accepted, {lo} ms (store.limits.max_age_s)"
    return f"timestamp {stamp} ms later than the newest accepted, {hi} ms (store.limits.max_future_s)"


def count_refusal(kind: str, limit: int) -> Refusal:
    """The refusal of a request holding more than ``limit`` ``kind`` (samples or series); where
    counting stopped at the limit, the request's true size is not known."""
    return Refusal(
        f"too_many_{kind}",
        (),
        f"over {limit} {kind} in one request (max_{kind}_per_request); send smaller requests",
    )


class Admission:
    """The door checks with the writer's limits and clock (its ``IngestGuard``) and the caps on one
    request's size, and how many requests and samples were refused per reason
    (``refused_requests``, ``refused_samples``). Thread-safe."""

    def __init__(
        self,
        guard: IngestGuard,
        max_samples_per_request: int = DEFAULT_MAX_SAMPLES_PER_REQUEST,
        max_series_per_request: int = DEFAULT_MAX_SERIES_PER_REQUEST,
    ) -> None:
        if max_samples_per_request < 1 or max_series_per_request < 1:
            raise ValueError("max_samples_per_request and max_series_per_request: must be positive")
        self.guard = guard
        self.max_samples_per_request = max_samples_per_request
        self.max_series_per_request = max_series_per_request
        self.refused_requests: Counter[str] = Counter()
        self.refused_samples: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def limits(self) -> Limits:
        return self.guard.limits

    def check_counts(self, *, series: int, samples: int) -> Refusal | None:
        """None when a request of ``series`` and ``samples`` is within the caps, else the refusal
        (counted, with ``samples`` as the request's samples: a lower bound where counting stopped)."""
        refusal = None
        if samples > self.max_samples_per_request:
            refusal = count_refusal("samples", self.max_samples_per_request)
        elif series > self.max_series_per_request:
            refusal = count_refusal("series", self.max_series_per_request)
        if refusal is not None:
            self.count(refusal, samples)
        return refusal

    def check_labels(self, labels: Sequence[Labels]) -> Refusal | None:
        """The first refused label set among ``labels`` (each distinct one checked once)."""
        limits = self.guard.limits
        for key in dict.fromkeys(labels):
            refusal = label_refusal(key, limits)
            if refusal is not None:
                return refusal
        return None

    def check_times(self, labels: Sequence[Labels], index: np.ndarray, ts_ms: np.ndarray) -> Refusal | None:
        return time_refusal(labels, index, ts_ms, self.guard.time_bounds_ms())

    def check_columns(
        self,
        labels: Sequence[Labels],
        index: np.ndarray,
        ts_ms: np.ndarray,
        *,
        labels_checked: bool = False,
    ) -> Refusal | None:
        """A request in columns (``labels[index[i]]`` owns ``ts_ms[i]``): None to admit it whole,
        else the first refusal (counted). ``labels_checked``: the label sets were already checked
        with these limits (the remote-write decoder does so once per distinct series)."""
        refusal = None if labels_checked else self.check_labels(labels)
        if refusal is None:
            refusal = self.check_times(labels, index, ts_ms)
        if refusal is not None:
            self.count(refusal, len(ts_ms))
        return refusal

    def check_samples(self, batch: Sequence[Sample]) -> Refusal | None:
        """``check_counts`` and ``check_columns`` for a list of samples (the HTTP ingest route's form)."""
        if not batch:
            return None
        if len(batch) > self.max_samples_per_request:
            return self.check_counts(series=0, samples=len(batch))
        places: dict[Labels, int] = {}
        index = np.fromiter((places.setdefault(s.labels, len(places)) for s in batch), np.intp, len(batch))
        try:
            ts = np.fromiter((s.ts_ms for s in batch), np.int64, len(batch))
        except (OverflowError, TypeError):  # past int64 (JSON integers are unbounded)
            bad = next(
                s for s in batch if not isinstance(s.ts_ms, int) or not TS_MIN_MS <= s.ts_ms <= TS_MAX_MS
            )
            refusal = Refusal(
                "timestamp_out_of_range", bad.labels, f"timestamp {bad.ts_ms!r} is not an int64 ms"
            )
            self.count(refusal, len(batch))
            return refusal
        refusal = self.check_counts(series=len(places), samples=len(batch))
        return refusal if refusal is not None else self.check_columns(list(places), index, ts)

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Copies of (``refused_requests``, ``refused_samples``) by reason, taken together."""
        with self._lock:
            return dict(self.refused_requests), dict(self.refused_samples)

    def count(self, refusal: Refusal, samples: int) -> None:
        with self._lock:
            self.refused_requests[refusal.reason] += 1
            self.refused_samples[refusal.reason] += samples
