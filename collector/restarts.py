"""Did the target restart since its last successful scrape? Its start time, or its counters, say so.

A target that exports ``process_start_time_seconds`` restarted when that value moved forward.
Many engines export none (llama.cpp, TGI, SGLang without the process collector), so for them a
restart is read from the target's own counters, which a restarted process begins again from 0:

- the counters compared are the target's own monotonic samples: counter-typed families (not their
  ``_created`` timestamps) and the ``_count``/``_bucket`` of histograms and summaries; the derived
  guide series and the health series are not the target's and are never compared;
- only series in both scrapes whose earlier value was above 0 can show a reset (a counter still at
  0 cannot go back), and only finite values count;
- a family is reset when most (more than half) of those series of it went down; the target
  restarted when most of its comparable families are reset in the same scrape.

So a single counter that legitimately starts again (a label child removed and re-created, one
family reset by the engine) while the others keep counting is not a restart; PromQL's
``rate``/``increase`` still handle that one reset as Prometheus does. A target with a single
counter family restarts whenever that family resets, which is all it can say. The comparison is
always with the last successful scrape, so a restart while the target was unreachable (``up 0``
in between) is still seen on the first scrape after it.
"""

from __future__ import annotations

import math
from collections import defaultdict

from collector.parse import ParsedSample

START_TIME = "process_start_time_seconds"
MONOTONIC_SUFFIXES = ("_count", "_bucket")
MONOTONIC_PARENT_TYPES = frozenset({"histogram", "summary", "gaugehistogram"})
RESET_SHARE = 0.5  # more than this share of a family's series, or of the families, went down

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def _is_monotonic(sample: ParsedSample) -> bool:
    if sample.name.endswith("_created"):
        return False
    if sample.type == "counter":
        return True
    return sample.type in MONOTONIC_PARENT_TYPES and sample.name.endswith(MONOTONIC_SUFFIXES)


def _most(part: int, whole: int) -> bool:
    return whole > 0 and part > whole * RESET_SHARE


class RestartTracker:
    """Feed it each successful scrape's own samples; it answers whether the target restarted.

    >>> tracker = RestartTracker()
    >>> c = lambda v: ParsedSample("a_total", {}, v, None, "a", "counter")
    >>> tracker.observe([c(5.0)]), tracker.observe([c(7.0)]), tracker.observe([c(1.0)])
    (False, False, True)
    >>> tracker.restarts
    1
    """

    def __init__(self) -> None:
        self.restarts = 0
        self._start_time: float | None = None
        self._counters: dict[SeriesKey, tuple[str, float]] = {}

    def observe(self, samples: list[ParsedSample]) -> bool:
        """One successful scrape of the target; True (and ``restarts`` + 1) if it restarted."""
        start_times = [s.value for s in samples if s.name == START_TIME and math.isfinite(s.value)]
        counters = {
            (s.name, tuple(sorted(s.labels.items()))): (s.family, s.value)
            for s in samples
            if _is_monotonic(s) and math.isfinite(s.value)
        }
        if start_times:
            start = max(start_times)
            restarted = self._start_time is not None and start > self._start_time
            self._start_time = start
        else:
            restarted = self._counters_reset(counters)
        self._counters = counters
        self.restarts += restarted
        return restarted

    def _counters_reset(self, counters: dict[SeriesKey, tuple[str, float]]) -> bool:
        went_down: dict[str, int] = defaultdict(int)
        compared: dict[str, int] = defaultdict(int)
        for key, (family, value) in counters.items():
            earlier = self._counters.get(key)
            if earlier is None or earlier[1] <= 0:
                continue
            compared[family] += 1
            went_down[family] += value < earlier[1]
        reset_families = sum(_most(went_down[f], n) for f, n in compared.items())
        return _most(reset_families, len(compared))
