"""An in-memory ``Querier`` for tests and the PromQL conformance runner.

>>> from model.labels import MatchOp, Matcher
>>> store = MemoryStore()
>>> store.append({"__name__": "up", "job": "a"}, 0, 1.0)
>>> store.select([Matcher("__name__", MatchOp.EQ, "up")], 0, 10)[0].values
array([1.])
"""

from __future__ import annotations

import numpy as np

from model.labels import Labels, Matcher, to_labels
from model.series import Series


class MemoryStore:
    """Series kept as per-series dicts ``ts_ms -> value``; a later append at the same time wins."""

    def __init__(self) -> None:
        self._points: dict[Labels, dict[int, float]] = {}
        self._arrays: dict[Labels, tuple[np.ndarray, np.ndarray]] = {}

    def append(self, labels: dict[str, str], ts_ms: int, value: float) -> None:
        key = to_labels(labels)
        self._points.setdefault(key, {})[int(ts_ms)] = float(value)
        self._arrays.pop(key, None)

    def clear(self) -> None:
        self._points.clear()
        self._arrays.clear()

    def _sorted(self, key: Labels) -> tuple[np.ndarray, np.ndarray]:
        arrays = self._arrays.get(key)
        if arrays is None:
            items = sorted(self._points[key].items())
            ts = np.fromiter((t for t, _ in items), dtype=np.int64, count=len(items))
            vals = np.fromiter((v for _, v in items), dtype=np.float64, count=len(items))
            arrays = self._arrays[key] = (ts, vals)
        return arrays

    def _matching(self, matchers: list[Matcher]) -> list[Labels]:
        out = []
        for key in self._points:
            labels = dict(key)
            if all(m.matches_labels(labels) for m in matchers):
                out.append(key)
        return out

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Matching series with their points in ``[start_ms, end_ms]``; series without points are left out."""
        result = []
        for key in self._matching(matchers):
            ts, vals = self._sorted(key)
            lo, hi = np.searchsorted(ts, start_ms, "left"), np.searchsorted(ts, end_ms, "right")
            if hi > lo:
                result.append(Series(labels=dict(key), ts_ms=ts[lo:hi].copy(), values=vals[lo:hi].copy()))
        return result

    def label_names(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        names = {name for s in self.select(matchers, start_ms, end_ms) for name in s.labels}
        return sorted(names)

    def label_values(self, name: str, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        values = {s.labels[name] for s in self.select(matchers, start_ms, end_ms) if s.labels.get(name)}
        return sorted(values)
