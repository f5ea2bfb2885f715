"""Exemplars in and out of the ``exemplars`` table, keyed by their series' fingerprint.

Writes take anything shaped like ``collector.proxy.exemplars.Exemplar`` (the store does not import
the collector). Reads take the fingerprints a selector matched (``find_series``, which applies the
caller's project scope), so no exemplar is read without its series being visible to the caller.

Bounded: each read returns at most ``MAX_EXEMPLARS`` (the newest), over at most ``MAX_SERIES``
series; retention drops the table's daily partitions with the metrics (``store.retention``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from model.labels import METRIC_NAME, Labels
from store.backend import Backend
from store.writes import fingerprint

MAX_EXEMPLARS = 10_000  # per read (Prometheus keeps 100,000 in all, in memory)
MAX_SERIES = 10_000  # per read: more matched series are answered from the first ones, by fingerprint
_BATCH_SERIES = 2_000  # fingerprints bound in one statement


class ExemplarLike(Protocol):
    @property
    def series(self) -> Labels: ...
    @property
    def labels(self) -> Labels: ...
    @property
    def value(self) -> float: ...
    @property
    def ts_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class StoredExemplar:
    """An exemplar read back: its series' fingerprint, time (ms), value and labels."""

    fingerprint: int
    ts_ms: int
    value: float
    labels: dict[str, str]


class ExemplarStore:
    """``ExemplarStore(backend).write(exemplars)``; ``read(fingerprints, start_ms, end_ms)``."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def write(self, exemplars: Sequence[ExemplarLike]) -> int:
        """Insert the exemplars (their series labels canonical, with ``__name__``); returns how many."""
        if not exemplars:
            return 0
        names = [dict(e.series).get(METRIC_NAME, "") for e in exemplars]
        strings = pa.list_(pa.string())
        self._backend.insert(
            "exemplars",
            pa.table(
                {
                    "metric_name": pa.array(names, pa.string()),
                    "fingerprint": pa.array([fingerprint(e.series) for e in exemplars], pa.uint64()),
                    "ts_ms": pa.array([e.ts_ms for e in exemplars], pa.int64()),
                    "value": pa.array([e.value for e in exemplars], pa.float64()),
                    "label_names": pa.array([[k for k, _ in e.labels] for e in exemplars], strings),
                    "label_values": pa.array([[v for _, v in e.labels] for e in exemplars], strings),
                }
            ),
        )
        return len(exemplars)

    def read(self, fingerprints: Sequence[int], start_ms: int, end_ms: int) -> list[StoredExemplar]:
        """The exemplars of these series in [start_ms, end_ms], oldest first; one per (series, time)."""
        fps = sorted(set(fingerprints))[:MAX_SERIES]
        found: list[StoredExemplar] = []
        db = self._backend.database
        for i in range(0, len(fps), _BATCH_SERIES):
            params: dict[str, Any] = {"fps": fps[i : i + _BATCH_SERIES], "t0": start_ms, "t1": end_ms}
            table = self._backend.query(
                f"SELECT fingerprint, ts_ms, any(value) AS v, any(label_names) AS n, any(label_values) AS lv "
                f"FROM {db}.exemplars WHERE fingerprint IN {{fps:Array(UInt64)}} "
                f"AND ts_ms >= {{t0:Int64}} AND ts_ms <= {{t1:Int64}} "
                f"GROUP BY fingerprint, ts_ms ORDER BY ts_ms DESC LIMIT {MAX_EXEMPLARS}",
                params,
            )
            columns = [table.column(j).to_pylist() for j in range(5)]
            found.extend(
                StoredExemplar(fp, ts, v, dict(zip(n, lv, strict=True)))
                for fp, ts, v, n, lv in zip(*columns, strict=True)
            )
        found.sort(key=lambda e: e.ts_ms, reverse=True)
        return sorted(found[:MAX_EXEMPLARS], key=lambda e: (e.fingerprint, e.ts_ms))
