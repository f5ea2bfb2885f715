"""Batched writes: samples to the ``samples`` table, new (series, day) pairs to ``series``."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import pyarrow as pa

from model.labels import METRIC_NAME, Labels
from model.series import Sample
from store.backend import Backend

_DAY_MS = 86_400_000


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
    process; a repeat after a restart collapses in the ReplacingMergeTree.
    """

    def __init__(self, backend: Backend, cache_size: int = 1_000_000) -> None:
        self._backend = backend
        self._fingerprints: OrderedDict[Labels, int] = OrderedDict()
        self._seen_days: set[tuple[int, int]] = set()
        self._cache_size = cache_size

    def _fingerprint(self, labels: Labels) -> int:
        fp = self._fingerprints.get(labels)
        if fp is None:
            fp = fingerprint(labels)
            self._fingerprints[labels] = fp
            if len(self._fingerprints) > self._cache_size:
                self._fingerprints.popitem(last=False)
        return fp

    def write(self, batch: list[Sample]) -> int:
        """Insert the batch; returns the number of samples written."""
        if not batch:
            return 0
        names, fps, ts, values = [], [], [], []
        new_series: dict[tuple[int, int], tuple[str, Labels]] = {}
        for sample in batch:
            fp = self._fingerprint(sample.labels)
            name = sample.name
            names.append(name)
            fps.append(fp)
            ts.append(sample.ts_ms)
            values.append(sample.value)
            day = sample.ts_ms // _DAY_MS
            if (fp, day) not in self._seen_days:
                new_series[(fp, day)] = (name, sample.labels)
        if new_series:
            self._backend.insert("series", _series_rows(new_series))
        self._backend.insert(
            "samples",
            pa.table(
                {
                    "metric_name": pa.array(names, pa.string()),
                    "fingerprint": pa.array(fps, pa.uint64()),
                    "ts_ms": pa.array(ts, pa.int64()),
                    "value": pa.array(np.asarray(values, dtype=np.float64)),
                }
            ),
        )
        # Only remember series rows once they are stored, so a failed insert is retried whole.
        self._seen_days.update(new_series)
        return len(batch)


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
