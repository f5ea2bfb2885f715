"""Reads that leave out the points between a range query's windows (``StepWindows``) change no answer.

Properties: for random series (irregular times, gaps, stale markers, counter resets) and random
grids whose windows leave time between them, every range query answers exactly what it answers
when all points are read; the store's read returns exactly the points some window holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model.labels import Matcher, MatchOp, to_labels
from model.series import STALE_NAN, Sample, StepWindows
from query.api.app import build_querier
from query.promql.engine import Engine
from store.open import open_store

T0 = 1_700_000_000_000
QUERIES = [
    "rate(c[{w}])",
    "increase(c[{w}])",
    "sum by (pod) (rate(c[{w}]))",
    "max_over_time(g[{w}])",
    "count_over_time(g[{w}])",
    "changes(g[{w}])",
    "resets(c[{w}])",
    "g",
    "timestamp(g)",
    "avg_over_time(g[{w}] offset 3m)",
]


def test_every_range_query_answers_as_with_every_point(tmp_path: Path) -> None:
    """One store for all examples (chDB holds one folder per process); reads go to chDB itself."""
    store = open_store(f"chdb://{tmp_path / 'd'}", recent=(1.0, 0))
    written: list[int] = []

    @settings(max_examples=40, deadline=None)
    @given(
        gaps=st.lists(st.integers(1, 200), min_size=5, max_size=120),
        stale_every=st.integers(3, 40),
        reset_every=st.integers(4, 50),
        step_s=st.integers(30, 900),
        window_s=st.integers(5, 600),
        offset_s=st.integers(0, 300),
        query=st.sampled_from(QUERIES),
    )
    def check(
        gaps: list[int],
        stale_every: int,
        reset_every: int,
        step_s: int,
        window_s: int,
        offset_s: int,
        query: str,
    ) -> None:
        base = T0 + len(written) * 10**8  # each example in a time range of its own
        written.append(1)
        batch, t, counter = [], base, 0.0
        for i, gap in enumerate(gaps):
            t += gap * 1000
            counter = 0.0 if i % reset_every == 0 else counter + gap
            for pod in ("a", "b"):
                value = STALE_NAN if i % stale_every == 0 else counter
                batch.append(Sample(to_labels({"__name__": "c", "pod": pod}), t, value))
                batch.append(Sample(to_labels({"__name__": "g", "pod": pod}), t, float(gap)))
        store.writer.write(batch)
        engine = Engine(build_querier(store), lookback_delta_ms=60_000)
        every = Engine(build_querier(store), lookback_delta_ms=60_000)
        every._select_takes_windows = False
        assert engine._select_takes_windows
        text = query.format(w=f"{window_s}s")
        start, end = base + offset_s * 1000, t + 60_000
        ours = engine.range(text, start, end, step_s * 1000, share=False)
        theirs = every.range(text, start, end, step_s * 1000, share=False)
        assert [(s.labels, s.ts_ms.tolist(), s.values.tolist()) for s in ours.series] == [
            (s.labels, s.ts_ms.tolist(), s.values.tolist()) for s in theirs.series
        ]

    try:
        check()
    finally:
        store.close()


def test_the_store_returns_exactly_the_points_some_window_holds(tmp_path: Path) -> None:
    store = open_store(f"chdb://{tmp_path / 'd'}", recent=(1.0, 0))
    try:
        times = T0 + np.cumsum(np.random.default_rng(7).integers(1, 30_000, 3000))
        store.writer.write([Sample(to_labels({"__name__": "g"}), int(t), 1.0) for t in times])
        name = [Matcher("__name__", MatchOp.EQ, "g")]
        start, end = int(times[100]), int(times[-100])
        windows = StepWindows(end, 137_000, 41_000)
        (everything,) = store.querier.select(name, start, end)
        (some,) = store.querier.select(name, start, end, windows=windows)
        assert some.ts_ms.tolist() == everything.ts_ms[windows.holds(everything.ts_ms)].tolist()
        assert 0 < len(some.ts_ms) < len(everything.ts_ms) / 2
    finally:
        store.close()
