"""Per-interval ratios of two counters, e.g. llama.cpp's ms per output token, which its
``llamacpp:tokens_predicted_seconds_total`` and ``llamacpp:tokens_predicted_total`` allow:
Δseconds / Δtokens x 1000 between two scrapes.

The adapters are pure functions of one scrape; a ratio needs the previous one, so the sidecar keeps
one ``IntervalRatios`` per target. A ratio is written only for an interval where the denominator
grew (no tokens, no figure: the series then goes stale at once, no echo of an old value), and not
across a counter that went back (a restart: the interval's deltas are unknown). Non-finite values
are skipped; nothing here raises.
"""

from __future__ import annotations

import math

from collector.engines.mapping import Ratio
from collector.parse import ParsedSample

LabelKey = tuple[tuple[str, str], ...]


class IntervalRatios:
    """``samples = ratios.update(parsed)`` after each successful scrape.

    >>> from collector.engines.mapping import Ratio
    >>> r = IntervalRatios((Ratio("ms_per_token", "s_total", "tokens_total", 1000.0),))
    >>> def scrape(s, t):
    ...     return [ParsedSample("s_total", {}, s, None, "s", "counter"),
    ...             ParsedSample("tokens_total", {}, t, None, "tokens", "counter")]
    >>> r.update(scrape(1.0, 100)), [x.value for x in r.update(scrape(1.5, 150))]
    ([], [10.0])
    """

    def __init__(self, ratios: tuple[Ratio, ...]) -> None:
        self._ratios = ratios
        self._names = {n for r in ratios for n in (r.numerator, r.denominator)}
        self._last: dict[tuple[str, LabelKey], float] = {}

    def update(self, samples: list[ParsedSample]) -> list[ParsedSample]:
        if not self._ratios:
            return []
        now: dict[tuple[str, LabelKey], float] = {}
        stamps: dict[LabelKey, int | None] = {}
        for s in samples:
            if s.name in self._names and math.isfinite(s.value):
                key = tuple(sorted(s.labels.items()))
                now[(s.name, key)] = s.value
                stamps.setdefault(key, s.ts_ms)
        out = []
        for ratio in self._ratios:
            for (name, key), denominator in now.items():
                if name != ratio.denominator:
                    continue
                numerator = now.get((ratio.numerator, key))
                before_num = self._last.get((ratio.numerator, key))
                before_den = self._last.get((ratio.denominator, key))
                if numerator is None or before_num is None or before_den is None:
                    continue
                d_num, d_den = numerator - before_num, denominator - before_den
                if d_den <= 0 or d_num < 0:
                    continue
                value = d_num / d_den * ratio.factor
                if math.isfinite(value):
                    out.append(
                        ParsedSample(ratio.target, dict(key), value, stamps[key], ratio.target, "gauge")
                    )
        self._last = now
        return out
