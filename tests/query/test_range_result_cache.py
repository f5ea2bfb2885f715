"""The range-answer cache: the same answer as computed whole, late data and scope respected."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.labels import to_labels
from model.series import Sample
from query.promql.engine import Engine
from query.promql.result_cache import MAX_BYTES, RangeResultCache
from query.promql.value import Matrix, MatrixSeries, matrix_data_json, to_api_json
from store.open import Store, open_store

STEP = 10_000


def _matrix(start: int, end: int) -> Matrix:
    ts = np.arange(start, end + 1, STEP, dtype=np.int64)
    return Matrix([MatrixSeries({"a": "1"}, ts, ts.astype(np.float64))])


class _Fake:
    def __init__(self) -> None:
        self.stamp: object = 1
        self.now = 1_000_000_000
        self.calls: list[tuple[int, int]] = []
        self.cache = RangeResultCache(lambda: self.stamp, 300_000, lambda: self.now)

    def ask(self, start: int, end: int, text: str = "q", scope: str | None = None) -> Matrix:
        def compute(a: int, b: int) -> Matrix:
            self.calls.append((a, b))
            return _matrix(a, b)

        return self.cache.range(scope, text, start, end, STEP, compute)


def _same(a: Matrix, b: Matrix) -> None:
    """Same series and points; and the cached answer's JSON, partly text kept from earlier
    answers, is byte for byte what rendering the computed one gives."""
    assert [s.labels for s in a.series] == [s.labels for s in b.series]
    for x, y in zip(a.series, b.series, strict=True):
        assert x.ts_ms.tolist() == y.ts_ms.tolist()
        np.testing.assert_array_equal(x.values, y.values)
    assert matrix_data_json(a.series) == orjson.dumps(to_api_json(b))


def test_a_slid_window_computes_only_the_steps_after_the_settled_ones() -> None:
    f = _Fake()
    end = f.now
    _same(f.ask(end - 900_000, end), _matrix(end - 900_000, end))
    f.now += 60_000
    _same(f.ask(end - 840_000, end + 60_000), _matrix(end - 840_000, end + 60_000))
    # the first answer was settled up to 5 minutes before its time: only what follows is computed
    assert f.calls == [(end - 900_000, end), (end - 300_000 + STEP, end + 60_000)]
    assert f.cache.hits == 1


@pytest.mark.parametrize("change", ["stamp", "scope", "text", "grid", "offset", "at", "earlier start"])
def test_no_reuse_across_a_change(change: str) -> None:
    f = _Fake()
    end = f.now - 3_600_000
    text = {"offset": "x offset 5m", "at": "x @ 100"}.get(change, "q")
    f.ask(end - 900_000, end, text)
    start = {"grid": end - 895_000, "earlier start": end - 910_000}.get(change, end - 900_000)
    if change == "stamp":
        f.stamp = 2
    f.ask(start, end, text + ("2" if change == "text" else ""), "p1" if change == "scope" else None)
    assert f.calls[-1] == (start, end)
    assert f.cache.hits == 0


def test_without_a_stamp_nothing_is_cached() -> None:
    f = _Fake()
    f.stamp = None
    f.ask(0, 100_000)
    f.ask(0, 100_000)
    assert len(f.calls) == 2


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'chdb'}")
    try:
        yield opened
    finally:
        opened.close()


def _write(store: Store, ts_ms: int, value: float, pod: str = "a") -> None:
    store.writer.write([Sample(to_labels({"__name__": "req_total", "pod": pod}), ts_ms, value)])


def test_late_and_new_points_are_seen_on_a_real_store(store: Store) -> None:
    """Points near now keep the settled steps valid; a late point (older than 5 minutes) drops them."""
    now = int(time.time() * 1000) // STEP * STEP
    for i in range(120):
        _write(store, now - 1_200_000 + i * STEP, float(i))
    engine = Engine(store.querier)
    cache = RangeResultCache(store.querier.data_stamp, store.querier.recent_ms)
    query = "sum(rate(req_total[1m]))"

    def both(start: int, end: int) -> None:
        cached = cache.range(None, query, start, end, STEP, lambda a, b: engine.range(query, a, b, STEP))
        _same(cached, engine.range(query, start, end, STEP))

    both(now - 1_200_000, now)
    _write(store, now + STEP, 500.0)  # recent: the settled steps stay
    both(now - 1_190_000, now + STEP)
    assert cache.hits == 1
    _write(store, now - 900_000 + 5_000, 1e6, pod="b")  # late: inside the settled steps
    both(now - 1_190_000, now + STEP)
    assert cache.hits == 1  # computed afresh, and it shows the late point


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.integers(0, 60), st.integers(1, 40), st.sampled_from(("a", "b"))),
        min_size=1,
        max_size=10,
    )
)
def test_cached_answers_equal_answers_computed_whole(
    store: Store, ops: list[tuple[bool, int, int, str]]
) -> None:
    """Writes (late or recent) and slid windows at random: every answer is the engine's own."""
    now = int(time.time() * 1000) // STEP * STEP
    engine = Engine(store.querier)
    cache = RangeResultCache(store.querier.data_stamp, store.querier.recent_ms)
    query = 'sum by (pod) (increase(req_total[1m])) + count(req_total{pod=~"a|b"})'
    for write, back, width, pod in ops:
        if write:
            _write(store, now - back * STEP, float(back * 7 + width), pod)
            continue
        start, end = now - (back + width) * STEP, now - back * STEP + 5 * STEP
        cached = cache.range("p", query, start, end, STEP, lambda a, b: engine.range(query, a, b, STEP))
        _same(cached, engine.range(query, start, end, STEP))


@pytest.mark.parametrize("slide_ms", [STEP, 60_000, 290_000, 310_000])
def test_a_window_sliding_on_and_on_reads_right_every_time(slide_ms: int) -> None:
    """Each refresh joins kept steps to new ones, and keeps part of that join for the next: the
    text kept across many such refreshes still reads as the computed answer."""
    f = _Fake()
    for _ in range(12):
        _same(f.ask(f.now - 900_000, f.now), _matrix(f.now - 900_000, f.now))
        f.now += slide_ms
    assert f.cache.hits == 11


def test_memory_stays_bounded_whatever_is_asked() -> None:
    f = _Fake()
    for i in range(60):
        f.ask(0, (i % 7 + 1) * 20_000 * STEP, text=f"q{i}")
    cache = f.cache
    held = sum(entry.nbytes for entry in cache._entries.values())
    assert held == cache._bytes <= MAX_BYTES
    assert cache._bytes > MAX_BYTES // 2  # the bound was reached, not avoided


def test_kept_steps_do_not_hold_the_whole_answer() -> None:
    f = _Fake()
    answer = f.ask(0, f.now)
    kept = next(iter(f.cache._entries.values())).parts[0][0]
    assert kept.ts_ms.base is None or kept.ts_ms.base is not answer.series[0].ts_ms.base
