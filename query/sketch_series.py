"""The sketches as a PromQL series, so Grafana and rules can read them like any other.

``infersight_sketch_quantile{metric="infer_service_first_token_cost", quantile="0.99",
service_id="…"}`` has one point per 10 s window (at the window's end): the sketches of every pod
matching the identity matchers merged, and their quantile — within 1 % of the exact value, where
``histogram_quantile`` is as coarse as the bucket the quantile falls in. Identity matchers are
pushed into the merge: ``=`` and a literal ``=~"value"`` select; ``=~".*"`` (Grafana's "All")
selects everything; other
matchers on identity labels select nothing, since the merge is over exactly the matched pods.
Merging windows into longer periods is not PromQL's to do (quantiles do not average): use
``/api/v1/sketch_quantiles`` with ``period`` for that.

A series ends when its windows end, as a scraped series does with Prometheus' staleness markers:
after the last window with data, the end of the next (empty) window carries a stale NaN, so
neither an instant query nor a range query's later steps echo the last quantile for the 5-minute
lookback. An empty window is trusted to be empty once it has been over for one more window
plus one more (``SETTLE_MS``, 20 s: its rows may still be on their way from the proxy), counted
on the clock when the query is asked, not from the query's end: a step's value then depends on
neither the range asked nor how the engine splits it into passes. Until then the last window's
value stands, as a scraped series' last sample does until the next scrape. So at the right edge of
a query that ends now the last value may stand up to 30 s after its window; anywhere older the
series ends exactly when its windows do.
"""

from __future__ import annotations

import re
import time

import numpy as np

from model.labels import METRIC_NAME, Matcher, MatchOp, to_labels
from model.rollups import BUCKET_COLUMNS, Buckets
from model.series import STALE_NAN, Series, StepWindows
from query.promql.storage import Querier
from query.sketch_quantiles import period_quantiles
from store.backend import Backend
from store.sketches import IDENTITY_COLUMNS, MAX_SPAN_MS, SketchReader

SKETCH_SERIES = "infersight_sketch_quantile"
QUANTILES = (0.5, 0.9, 0.99, 0.999)
WINDOW_MS = 10_000
# an empty window this long over is taken as empty (the series goes stale there): the proxy drains a
# window at its next flush tick, 10 s on, and the exporter delivers it within seconds more
SETTLE_MS = 2 * WINDOW_MS
_MATCH_ALL = frozenset({".*", ".+"})
_REGEX_SYNTAX = re.compile(r"[.^$*+?{}\[\]\\|()]")


def now_ms() -> int:
    """The clock windows settle by (a function, so tests can set it)."""
    return int(time.time() * 1000)


def _literal(pattern: str) -> bool:
    """A regex that only matches itself (Grafana writes a single-value variable as ``=~"value"``)."""
    return bool(pattern) and not _REGEX_SYNTAX.search(pattern)


class SketchSeriesQuerier:
    """Wraps the store's querier; answers the virtual ``infersight_sketch_quantile`` itself."""

    def __init__(self, inner: Querier, backend: Backend) -> None:
        self._inner = inner
        self._reader = SketchReader(backend)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    @staticmethod
    def keep_until_ms(query: str) -> int | None:
        """The last time a step of a query may be kept as it is now (None: any time): a window's
        stale marker appears once the window has settled (``SETTLE_MS``) on ``now_ms``, so a step
        of the last ``SETTLE_MS`` may still change as time passes. Any query naming the sketch
        series counts, whatever the name sits in."""
        return now_ms() - SETTLE_MS if SKETCH_SERIES in query else None

    @staticmethod
    def _is_sketch(matchers: list[Matcher]) -> bool:
        return any(m.op is MatchOp.EQ and (m.name, m.value) == (METRIC_NAME, SKETCH_SERIES) for m in matchers)

    def select_buckets(
        self,
        matchers: list[Matcher],
        start_ms: int,
        end_ms: int,
        width_ms: int,
        columns: tuple[str, ...] = BUCKET_COLUMNS,
    ) -> Buckets | None:
        """The store's rollups; None for the virtual series (the engine then reads ``select``)."""
        if self._is_sketch(matchers):
            return None
        return self._inner.select_buckets(matchers, start_ms, end_ms, width_ms, columns)  # type: ignore[attr-defined]

    def select(
        self, matchers: list[Matcher], start_ms: int, end_ms: int, windows: StepWindows | None = None
    ) -> list[Series]:
        if not self._is_sketch(matchers):
            if windows is None:
                return self._inner.select(matchers, start_ms, end_ms)
            return self._inner.select(matchers, start_ms, end_ms, windows=windows)
        metric = next((m.value for m in matchers if m.name == "metric" and m.op is MatchOp.EQ), None)
        if metric is None:
            return []
        filters: dict[str, str] = {}
        for m in matchers:
            if m.name in IDENTITY_COLUMNS:
                if m.op is MatchOp.EQ or (m.op is MatchOp.RE and _literal(m.value)):
                    filters[m.name] = m.value
                elif not (m.op is MatchOp.RE and m.value in _MATCH_ALL):
                    return []
        qs = tuple(q for q in QUANTILES if all(m.matches(repr(q)) for m in matchers if m.name == "quantile"))
        if not qs:
            return []
        # A point at a window's end covers [end - 10 s, end): read the windows that end in range,
        # and the one before, whose stale marker may be in range.
        start = max(start_ms - 2 * WINDOW_MS, end_ms - MAX_SPAN_MS)
        merged = self._reader.merged(metric, filters, start, end_ms - WINDOW_MS + 1, WINDOW_MS)
        starts, _, values = period_quantiles(merged, qs)
        ts, values = _with_stale_markers(np.asarray(starts, dtype=np.int64) + WINDOW_MS, values, now_ms())
        keep = (ts >= start_ms) & (ts <= end_ms)
        base = {METRIC_NAME: SKETCH_SERIES, "metric": metric, **filters}
        found = [
            Series({**base, "quantile": repr(q)}, ts[keep], values[keep, i].astype(np.float64))
            for i, q in enumerate(qs)
            if keep.any()
        ]
        # in their labels' order, as the store's own series (``series_in_label_order``)
        return sorted(found, key=lambda s: to_labels(s.labels))


def _with_stale_markers(ts: np.ndarray, values: np.ndarray, now: int) -> tuple[np.ndarray, np.ndarray]:
    """The window points plus a stale NaN at the end of each empty window that follows a window
    with data, where that empty window has settled by ``now``; sorted by time."""
    after = ts + WINDOW_MS
    ends = after[~np.isin(after, ts) & (after + SETTLE_MS <= now)]
    if not len(ends):
        return ts, values
    markers = np.full((len(ends), values.shape[1]), STALE_NAN)
    all_ts = np.concatenate([ts, ends])
    order = np.argsort(all_ts, kind="stable")
    return all_ts[order], np.concatenate([values, markers])[order]
