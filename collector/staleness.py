"""Staleness markers, as Prometheus writes them when a series disappears from a target.

After each scrape, a series seen in the previous scrape but absent now gets one sample whose
value is Prometheus' stale NaN (``model.series.STALE_NAN``) at the new scrape's timestamp, so
queries stop returning it at once instead of for the 5-minute lookback. A failed scrape makes
every series stale except the health series. Series exposed with their own timestamps are
never marked, as in Prometheus.
"""

from __future__ import annotations

from model.labels import Labels
from model.series import STALE_NAN, Sample


class StalenessTracker:
    """Remembers the series of the last scrape and returns markers for those that vanished.

    >>> tracker = StalenessTracker()
    >>> tracker.update({(("__name__", "a"),)}, 1000)
    []
    >>> [s.labels for s in tracker.update(set(), 2000)]
    [(('__name__', 'a'),)]
    """

    def __init__(self) -> None:
        self._seen: set[Labels] = set()

    def update(self, current: set[Labels], ts_ms: int) -> list[Sample]:
        gone = self._seen - current
        self._seen = set(current)
        return [Sample(labels, ts_ms, STALE_NAN) for labels in sorted(gone)]

    def mark_all(self, ts_ms: int) -> list[Sample]:
        """Markers for every remembered series (the target is going away); forgets them."""
        return self.update(set(), ts_ms)
