"""Rollups: range functions read from 1 min … 1 h buckets give the raw samples' answers, on both backends.

The same ClickHouse store is asked every rollup-capable function through two engines, one reading
rollup buckets and one raw samples; series, timestamps and values (1e-9 relative) must agree. The
data has what breaks naive bucketing: points exactly on bucket boundaries, jittered scrapes, gaps,
counter resets, a replayed batch (duplicates), staleness markers, NaN, and late data.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from collector.window import WindowedSketches
from model.rollups import WIDTHS_MS
from model.series import STALE_NAN, Sample
from query.promql import rollup_eval
from query.promql.engine import Engine
from query.promql.value import Matrix, Vector
from store.open import Store
from store.rollups import LateMarker, RollupJob, read_done
from store.sketches import MergedSketch, SketchReader
from store.sketches import to_table as sketch_table
from tests.store.test_sketches import T0_S as SKETCH_T0_S
from tests.store.test_sketches import TTFT
from tests.store.test_sketches import _load as _load_sketches

T_END = 6 * 3_600_000  # six hours of 10 s scrapes starting at 0
RANGES = ["1m", "5m", "15m", "1h", "2h"]


def _series(rng: random.Random) -> list[Sample]:
    out: list[Sample] = []
    for i in range(6):
        labels = (("__name__", "reqs"), ("job", "api"), ("pod", f"p{i}"))
        value = 0.0
        for step in range(1, T_END // 10_000):
            if rng.random() < 0.03:
                continue  # a missed scrape
            jitter = 0 if i < 3 else rng.randint(-4_000, 4_000)  # pods 0-2 scrape exactly on the 10 s
            value = 0.0 if rng.random() < 0.004 else value + rng.random() * 3
            out.append(Sample(labels, step * 10_000 + jitter, value))
        if i == 5:  # a pod that went away: its series ends with a staleness marker
            out.append(Sample(labels, T_END // 2, STALE_NAN))
    for i in range(3):
        labels = (("__name__", "temp"), ("zone", f"z{i}"))
        for step in range(1, T_END // 15_000):
            if 600 < step < 700 and i == 0:
                continue  # a long gap
            out.append(Sample(labels, step * 15_000, 20 + 10 * math.sin(step / 50 + i) + (step % 7 == 0)))
    return out


def _same(a: Any, b: Any) -> None:
    """Two query results hold the same series, timestamps and values (1e-9 relative)."""
    if isinstance(a, Vector):
        a_series = {tuple(sorted(s.labels.items())): ([a.ts_ms], [s.value]) for s in a.samples}
        b_series = {tuple(sorted(s.labels.items())): ([b.ts_ms], [s.value]) for s in b.samples}
    else:
        assert isinstance(a, Matrix)
        a_series = {tuple(sorted(s.labels.items())): (s.ts_ms, s.values) for s in a.series}
        b_series = {tuple(sorted(s.labels.items())): (s.ts_ms, s.values) for s in b.series}
    assert a_series.keys() == b_series.keys()
    for key, (ts, values) in a_series.items():
        other_ts, other_values = b_series[key]
        np.testing.assert_array_equal(ts, other_ts, err_msg=str(key))
        np.testing.assert_allclose(values, other_values, rtol=1e-9, atol=1e-12, err_msg=str(key))


class _Counting:
    """Counts how often the rollup path answered (so the comparison cannot pass by not using it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = rollup_eval.evaluate

        def counted(*args: Any) -> Any:
            out = original(*args)
            self.calls += out is not None
            return out

        monkeypatch.setattr(rollup_eval, "evaluate", counted)


@pytest.fixture
def store(store: Store) -> Store:
    """The suite's store, read without its recent points in memory: on chDB they would answer the
    covered times instead of the rollups these tests are about."""
    store.querier.recent = None
    return store


@pytest.fixture
def loaded(store: Store) -> Store:
    rng = random.Random(7)
    samples = _series(rng)
    store.writer.write(samples)
    store.writer.write(samples[1000:3000])  # a replayed batch: duplicates until merges
    return store


def test_job_rolls_every_width_to_its_horizon(loaded: Store) -> None:
    job = RollupJob(loaded.backend)
    done = job.run(now_ms=T_END - 1_800_000)
    horizon = T_END - 1_800_000 - job.lag_ms
    assert done == {w: horizon // w * w for w in WIDTHS_MS}
    assert read_done(loaded.backend) == done
    db = loaded.backend.database
    counts = loaded.backend.query(
        f"SELECT width_s, sum(count) AS n FROM {db}.rollups WHERE metric_name = 'reqs' "
        "AND bucket_ms <= {h:Int64} GROUP BY width_s ORDER BY width_s",
        {"h": horizon // 3_600_000 * 3_600_000},
    ).to_pylist()
    raw = (
        loaded.backend.query(
            f"SELECT uniqExact(fingerprint, ts_ms) AS n FROM {db}.samples WHERE metric_name = 'reqs' "
            "AND ts_ms <= {h:Int64} AND NOT isNaN(value)",
            {"h": horizon // 3_600_000 * 3_600_000},
        )
        .column(0)[0]
        .as_py()
    )
    # Every width holds each (deduplicated, non-stale) point once.
    assert [row["n"] for row in counts] == [raw] * len(WIDTHS_MS)
    assert job.run(now_ms=T_END - 1_800_000) == done  # nothing new: nothing recomputed


@pytest.mark.parametrize("fn", sorted(rollup_eval.FUNCTIONS))
def test_range_functions_from_rollups_equal_raw(
    loaded: Store, fn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    RollupJob(loaded.backend).run(now_ms=T_END - 3_600_000)  # the last hours come from raw at query time
    counting = _Counting(monkeypatch)
    fast = Engine(loaded.querier, min_bucket_width_ms=60_000)
    raw = Engine(loaded.querier, use_rollups=False)
    for metric in ("reqs", "temp"):
        for rng in RANGES:
            query = f"{fn}({metric}[{rng}])"
            _same(fast.range(query, 3_600_000, T_END, 60_000), raw.range(query, 3_600_000, T_END, 60_000))
            _same(fast.range(query, 0, T_END, 300_000), raw.range(query, 0, T_END, 300_000))
            _same(fast.instant(query, T_END // 2), raw.instant(query, T_END // 2))
        query = f"sum by (job) ({fn}({metric}[5m] offset 10m))"
        _same(fast.range(query, 3_600_000, T_END, 120_000), raw.range(query, 3_600_000, T_END, 120_000))
    assert counting.calls >= 2 * (3 * len(RANGES) + 1)


def test_unaligned_queries_read_raw_samples(loaded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _Counting(monkeypatch)
    fast = Engine(loaded.querier, min_bucket_width_ms=60_000)
    raw = Engine(loaded.querier, use_rollups=False)
    for query, start, step in [
        ("rate(reqs[5m])", 3_600_001, 60_000),  # start off the minute
        ("rate(reqs[90s])", 3_600_000, 60_000),  # range not a whole width
        ("rate(reqs[5m])", 3_600_000, 90_000),  # step not a whole width
    ]:
        _same(fast.range(query, start, T_END, step), raw.range(query, start, T_END, step))
    assert counting.calls == 0


def test_nan_values_fall_back_to_raw_samples(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = (("__name__", "g"), ("k", "v"))
    store.writer.write(
        [
            Sample(labels, t * 10_000, math.nan if t == 40 else math.inf if t == 80 else float(t))
            for t in range(1, 700)
        ]
    )
    RollupJob(store.backend).run(now_ms=7_000_000)
    counting = _Counting(monkeypatch)
    fast = Engine(store.querier, min_bucket_width_ms=60_000)
    raw = Engine(store.querier, use_rollups=False)
    for fn in ("sum_over_time", "avg_over_time", "max_over_time", "rate", "changes"):
        query = f"{fn}(g[5m])"
        _same(fast.range(query, 0, 7_000_000, 60_000), raw.range(query, 0, 7_000_000, 60_000))
    assert counting.calls == 0


def test_late_samples_are_recomputed(store: Store) -> None:
    """Samples stored after their buckets were rolled up are marked and folded in on the next run."""
    labels = (("__name__", "late"), ("k", "v"))
    now_ms = 4 * 3_600_000
    store.writer.write([Sample(labels, t * 10_000, float(t)) for t in range(1, 1400) if t % 2])
    job = RollupJob(store.backend)
    job.run(now_ms=now_ms)
    fast = Engine(store.querier, min_bucket_width_ms=60_000)
    raw = Engine(store.querier, use_rollups=False)
    query = "count_over_time(late[1h])"
    before = fast.range(query, 3_600_000, 3 * 3_600_000, 3_600_000)

    late = [Sample(labels, t * 10_000, float(t)) for t in range(1, 1400) if not t % 2]
    store.writer.write(late)  # the store's writer marks them (its LateMarker)
    stale = fast.range(query, 3_600_000, 3 * 3_600_000, 3_600_000)
    assert before.series[0].values.tolist() == stale.series[0].values.tolist() == [180.0] * 3

    spans = job.stats["late_spans"]
    job.run(now_ms=now_ms + 60_000)
    assert job.stats["late_spans"] > spans
    after = fast.range(query, 3_600_000, 3 * 3_600_000, 3_600_000)
    assert after.series[0].values.tolist() == [360.0, 361.0, 361.0]  # + the point at each window's start
    _same(after, raw.range(query, 3_600_000, 3 * 3_600_000, 3_600_000))


def test_recent_samples_are_not_marked_late(store: Store) -> None:
    marker = LateMarker(store.backend, clock=lambda: 1000.0)
    marker(990_000, 1_000_000)  # 10 s old: the regular run covers it
    marker(900_000, 1_000_000)  # 100 s old: marked
    rows = store.backend.query(
        f"SELECT from_ms, to_ms FROM {store.backend.database}.rollup_dirty"
    ).to_pylist()
    assert rows == [{"from_ms": 900_000, "to_ms": 1_000_000}]


def _digest(rows: list[MergedSketch]) -> list[tuple[Any, ...]]:
    """What a merged sketch holds: counts, bounds and every bucket (the sum to 1e-6)."""
    return [
        (
            r.period_start_ms,
            r.scale,
            r.count,
            round(r.sum, 6),
            r.min,
            r.max,
            r.zero_count,
            tuple(r.positive_keys.tolist()),
            tuple(r.positive_counts.tolist()),
        )
        for r in rows
    ]


def test_sketch_rollups_merge_as_the_windows_do(store: Store) -> None:
    """TPxx sketches read from rollup buckets equal the 10 s windows merged; late rows are folded in."""
    _load_sketches(store, minutes=70)
    reader = SketchReader(store.backend)
    start, end = SKETCH_T0_S * 1000, SKETCH_T0_S * 1000 + 3_600_000
    reads = [(f, p) for f in ({"service_id": "svc-a"}, {}) for p in (60_000, 300_000, 900_000, 3_600_000)]
    before = [_digest(reader.merged(TTFT, f, start, end, p)) for f, p in reads]
    assert all(before)

    job = RollupJob(store.backend)
    job.run(now_ms=end + 3_600_000)
    rolled = store.backend.query(
        f"SELECT width_s, count() AS n FROM {store.backend.database}.sketch_rollups "
        "GROUP BY width_s ORDER BY width_s"
    ).to_pylist()
    assert [r["width_s"] for r in rolled] == [60, 300, 900, 3600]
    assert [_digest(reader.merged(TTFT, f, start, end, p)) for f, p in reads] == before

    # A row slipped in without a mark is not seen: the reads above came from the rollups.
    windows = WindowedSketches()
    labels = {"service_id": "svc-a", "group_id": "dep-1", "source": "pod-0", "project_id": "p"}
    windows.observe(TTFT, labels, np.array([5.0, 7.0]), SKETCH_T0_S + 30)
    late = windows.drain_all()
    store.backend.insert("sketches", sketch_table(late))
    assert _digest(reader.merged(TTFT, {"service_id": "svc-a"}, start, end, 3_600_000)) == before[3]
    # Marked, as SketchWriter marks every late row, the next run folds it in.
    LateMarker(store.backend)(late[0].window_start_ms, late[0].window_start_ms)
    job.run(now_ms=end + 3_600_000)
    after = reader.merged(TTFT, {"service_id": "svc-a"}, start, end, 3_600_000)
    assert after[0].count == before[3][0][2] + 2


def test_default_engine_reads_buckets_of_five_minutes_and_more(
    loaded: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1-minute buckets measured slower than raw samples; the default engine starts at 5 minutes."""
    RollupJob(loaded.backend).run(now_ms=T_END)
    counting = _Counting(monkeypatch)
    engine, raw = Engine(loaded.querier), Engine(loaded.querier, use_rollups=False)
    _same(engine.range("rate(reqs[5m])", 0, T_END, 60_000), raw.range("rate(reqs[5m])", 0, T_END, 60_000))
    assert counting.calls == 0
    _same(engine.range("rate(reqs[15m])", 0, T_END, 300_000), raw.range("rate(reqs[15m])", 0, T_END, 300_000))
    assert counting.calls == 1
