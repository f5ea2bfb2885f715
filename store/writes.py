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
        self._identities: OrderedDict[Labels, tuple[int, str]] = OrderedDict()
        self._seen_days: set[tuple[int, int]] = set()
        self._cache_size = cache_size

    def _identity(self, labels: Labels) -> tuple[int, str]:
        entry = self._identities.get(labels)
        if entry is None:
            name = next((v for k, v in labels if k == METRIC_NAME), "")
            entry = (fingerprint(labels), name)
            self._identities[labels] = entry
            if len(self._identities) > self._cache_size:
                self._identities.popitem(last=False)
        return entry

    def write(self, batch: list[Sample]) -> int:
        """Insert the batch; returns the number of samples written."""
        if not batch:
            return 0
        identity = self._identity
        ids = [identity(sample.labels) for sample in batch]
        fps = np.fromiter((fp for fp, _ in ids), dtype=np.uint64, count=len(ids))
        ts = np.fromiter((sample.ts_ms for sample in batch), dtype=np.int64, count=len(batch))
        values = np.fromiter((sample.value for sample in batch), dtype=np.float64, count=len(batch))
        new_series = self._new_series(batch, fps, ts // _DAY_MS)
        if new_series:
            self._backend.insert("series", _series_rows(new_series))
        self._backend.insert(
            "samples",
            pa.table(
                {
                    "metric_name": pa.array([name for _, name in ids], pa.string()),
                    "fingerprint": pa.array(fps),
                    "ts_ms": pa.array(ts),
                    "value": pa.array(values),
                }
            ),
        )
        # Only remember series rows once they are stored, so a failed insert is retried whole.
        self._seen_days.update(new_series)
        return len(batch)

    def _new_series(
        self, batch: list[Sample], fps: np.ndarray, days: np.ndarray
    ) -> dict[tuple[int, int], tuple[str, Labels]]:
        pairs = np.stack([fps, days.astype(np.uint64)], axis=1)
        _, first = np.unique(pairs, axis=0, return_index=True)
        out: dict[tuple[int, int], tuple[str, Labels]] = {}
        for i in first.tolist():
            key = (int(fps[i]), int(days[i]))
            if key not in self._seen_days:
                labels = batch[i].labels
                out[key] = (self._identity(labels)[1], labels)
        return out


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
