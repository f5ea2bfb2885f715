"""Batched writes: samples to the ``samples`` table, new (series, day) pairs to ``series``."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from operator import attrgetter, itemgetter

import numpy as np
import pyarrow as pa

from model.labels import METRIC_NAME, Labels
from model.series import Sample
from store.backend import Backend
from store.limits import IngestGuard, Limits, label_problem, target_of

_DAY_MS = 86_400_000
_LABELS, _TS, _VALUE = attrgetter("labels"), attrgetter("ts_ms"), attrgetter("value")
_FIRST, _SECOND = itemgetter(0), itemgetter(1)


def fingerprint(labels: Labels) -> int:
    """Stable 64-bit identity of a canonical label set (the same in every process and release)."""
    h = hashlib.blake2b(digest_size=8)
    for key, value in labels:
        h.update(key.encode("utf-8", "surrogatepass"))
        h.update(b"\xff")
        h.update(value.encode("utf-8", "surrogatepass"))
        h.update(b"\xfe")
    return int.from_bytes(h.digest(), "little")


class SampleWriter:
    """Turns batches of samples into column inserts. ``SampleWriter(backend).write(batch)``.

    Remembers which (series, day) rows it has written so the series table gets each once per
    process; a repeat after a restart collapses in the ReplacingMergeTree. Bad input is dropped and
    counted in ``guard.dropped`` (``store.limits``), never raised.
    """

    def __init__(
        self,
        backend: Backend,
        cache_size: int = 1_000_000,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._backend = backend
        self.guard = IngestGuard(limits, clock)
        self._identities: OrderedDict[Labels, tuple[int, str, str | None]] = OrderedDict()
        self._seen_days: set[tuple[int, int]] = set()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _identity(self, labels: Labels) -> tuple[int, str, str | None]:
        """(fingerprint, metric name, why the labels are refused or None), cached per label set."""
        entry = self._identities.get(labels)
        if entry is None:
            name = next((v for k, v in labels if k == METRIC_NAME), "")
            problem = label_problem(labels, self.guard.limits)
            entry = (fingerprint(labels) if problem is None else 0, name, problem)
            self._identities[labels] = entry
            if len(self._identities) > self._cache_size:
                self._identities.popitem(last=False)
        return entry

    def write(self, batch: list[Sample]) -> int:
        """Insert the batch; returns the number of samples written (the rest are counted as dropped).

        One write at a time: the API's ingest, remote write and the exporters share one writer.
        """
        if not batch:
            return 0
        with self._lock:
            return self._write(batch)

    def _write(self, batch: list[Sample]) -> int:
        n = len(batch)
        # C-level map/attrgetter rather than Python loops: this is the per-sample hot path.
        labels = list(map(_LABELS, batch))
        ids = list(map(self._identities.get, labels))
        if None in ids:
            ids = [entry or self._identity(key) for entry, key in zip(ids, labels, strict=True)]
        fps = np.fromiter(map(_FIRST, ids), dtype=np.uint64, count=n)
        ts = np.fromiter(map(_TS, batch), dtype=np.int64, count=n)
        values = np.fromiter(map(_VALUE, batch), dtype=np.float64, count=n)
        reasons: Counter[str] = Counter()
        keep = self._screen(ids, ts, reasons)
        days = ts // _DAY_MS
        new_series = self._new_series(batch, fps, days, keep, reasons)
        _keep_last_per_timestamp(fps, ts, keep, reasons)
        self.guard.count(reasons)
        if reasons:
            index = np.flatnonzero(keep)
            fps, ts, values = fps[index], ts[index], values[index]
            names = [ids[i][1] for i in index.tolist()]
        else:
            names = list(map(_SECOND, ids))
        if new_series:
            self._backend.insert("series", _series_rows(new_series))
        if len(fps):
            self._backend.insert(
                "samples",
                pa.table(
                    {
                        "metric_name": pa.array(names, pa.string()),
                        "fingerprint": pa.array(fps),
                        "ts_ms": pa.array(ts),
                        "value": pa.array(values),
                    }
                ),
            )
        # Only remember series rows once they are stored, so a failed insert is retried whole.
        self._seen_days.update(new_series)
        return len(fps)

    def _screen(
        self, ids: list[tuple[int, str, str | None]], ts: np.ndarray, reasons: Counter[str]
    ) -> np.ndarray:
        """Mask of samples with acceptable labels and timestamps."""
        problems = [problem for _, _, problem in ids]
        if any(problems):
            keep = np.fromiter((p is None for p in problems), dtype=bool, count=len(problems))
            reasons.update(p for p in problems if p)
        else:
            keep = np.ones(len(ids), dtype=bool)
        low, high = self.guard.time_bounds_ms()
        if low is not None:
            _drop(keep, ts < low, "too_old", reasons)
        if high is not None:
            _drop(keep, ts > high, "too_far_in_future", reasons)
        return keep

    def _new_series(
        self,
        batch: list[Sample],
        fps: np.ndarray,
        days: np.ndarray,
        keep: np.ndarray,
        reasons: Counter[str],
    ) -> dict[tuple[int, int], tuple[str, Labels]]:
        """New (series, day) rows the cardinality limits admit; the refused leave ``keep``."""
        candidates = np.flatnonzero(keep)
        candidate_days = days[candidates]
        if len(candidates) == 0:
            return {}
        one_day = candidate_days.min() == candidate_days.max()  # the usual batch: skip a unique()
        firsts = []
        for day in [candidate_days[0]] if one_day else np.unique(candidate_days):
            of_day = candidates if one_day else candidates[candidate_days == day]
            _, first = np.unique(fps[of_day], return_index=True)
            firsts.append(of_day[first])
        out: dict[tuple[int, int], tuple[str, Labels]] = {}
        refused: list[tuple[int, int, str]] = []
        for i in np.concatenate(firsts).tolist():
            key = (int(fps[i]), int(days[i]))
            if key in self._seen_days:
                continue
            labels = batch[i].labels
            name = self._identity(labels)[1]
            reason = self.guard.admit_series(name, target_of(labels), key[0], key[1])
            if reason is None:
                out[key] = (name, labels)
            else:
                refused.append((*key, reason))
        groups: dict[tuple[int, str], list[int]] = {}
        for fp, day, reason in refused:  # one vector pass per (day, reason), not per series
            groups.setdefault((day, reason), []).append(fp)
        for (day, reason), refused_fps in groups.items():
            _drop(keep, np.isin(fps, np.array(refused_fps, np.uint64)) & (days == day), reason, reasons)
        return out


def _drop(keep: np.ndarray, refuse: np.ndarray, reason: str, reasons: Counter[str]) -> None:
    """Clear ``keep`` where ``refuse`` holds, counting the samples that were still kept."""
    refuse &= keep
    count = int(refuse.sum())
    if count:
        keep &= ~refuse
        reasons[reason] += count


def _keep_last_per_timestamp(
    fps: np.ndarray, ts: np.ndarray, keep: np.ndarray, reasons: Counter[str]
) -> None:
    """Within one batch, a repeated (series, timestamp) keeps its last value (Prometheus would refuse it)."""
    index = np.flatnonzero(keep)
    key = fps[index] ^ (ts[index].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    ordered = np.sort(key)
    if not (ordered[1:] == ordered[:-1]).any():  # the usual batch: nothing repeated
        return
    order = np.lexsort((index, ts[index], fps[index]))  # by series, time, then position
    f, t = fps[index][order], ts[index][order]
    earlier = np.r_[(f[1:] == f[:-1]) & (t[1:] == t[:-1]), False]  # followed by the same (series, ts)
    _drop(keep, np.isin(np.arange(len(keep)), index[order][earlier]), "duplicate_timestamp", reasons)


def _series_rows(new_series: dict[tuple[int, int], tuple[str, Labels]]) -> pa.Table:
    days, metric_names, fps, label_names, label_values = [], [], [], [], []
    for (fp, day), (name, labels) in new_series.items():
        days.append(day)
        metric_names.append(name)
        fps.append(fp)
        rest = [(k, v) for k, v in labels if k != METRIC_NAME]
        label_names.append([k for k, _ in rest])
        label_values.append([v for _, v in rest])
    return pa.table(
        {
            "day": pa.array(days, pa.int32()).cast(pa.date32()),
            "metric_name": pa.array(metric_names, pa.string()),
            "fingerprint": pa.array(fps, pa.uint64()),
            "label_names": pa.array(label_names, pa.list_(pa.string())),
            "label_values": pa.array(label_values, pa.list_(pa.string())),
        }
    )
