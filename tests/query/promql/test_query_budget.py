"""What one query may spend: points held (``max_samples``), time (a deadline that stops it where
it is), regexes in linear time, and turns for the interpreter."""

from __future__ import annotations

import threading
import time
import tracemalloc

import pytest

from query.promql.budget import Turns
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from query.promql.value import Vector
from store.memory import MemoryStore

HOUR_MS = 3_600_000


def _store(series: int = 3, points: int = 61) -> MemoryStore:
    store = MemoryStore()
    for s in range(series):
        for i in range(points):  # 10 minutes every 10 s
            store.append({"__name__": "m", "i": str(s)}, i * 10_000, float(i))
    return store


def _error(fn, *args) -> PromQLError:
    with pytest.raises(PromQLError) as info:
        fn(*args)
    return info.value


def test_a_subquery_of_billions_of_steps_is_refused_before_allocating() -> None:
    tracemalloc.start()
    try:
        err = _error(Engine(MemoryStore()).instant, "max_over_time(vector(1)[30d:1ms])", 30 * 86_400_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.error_type == "execution"
    assert "too many samples" in str(err)
    assert peak < 50 * 1024 * 1024  # the steps alone would be 20 GB


def test_subquery_steps_count_against_max_samples() -> None:
    engine = Engine(MemoryStore(), max_samples=1_000)
    assert isinstance(engine.instant("max_over_time(vector(1)[10m:1s])", HOUR_MS), Vector)  # 601 steps
    err = _error(engine.instant, "max_over_time(vector(1)[20m:1s])", HOUR_MS)  # 1,201 steps
    assert err.error_type == "execution"


def _least_budget(store: MemoryStore, query: str, ts_ms: int) -> int:
    """The smallest ``max_samples`` the query runs under."""
    lo, hi = 1, 100_000
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            Engine(store, max_samples=mid).instant(query, ts_ms)
        except PromQLError as err:
            refused = err.error_type
            lo = mid + 1
        else:
            refused = "execution"
            hi = mid
        assert refused == "execution"
    return lo


def test_operands_and_intermediate_results_held_at_once_count() -> None:
    store = _store()
    one = _least_budget(store, "m", 300_000)
    assert _least_budget(store, "m + m", 300_000) > one
    # The subquery's inner vector (601 steps x 3 series) is held while the outer function runs.
    assert _least_budget(store, "max_over_time((m + m)[10m:1s])", 600_000) >= 3 * 601


def test_a_range_query_counts_every_point_it_returns() -> None:
    store = _store(series=3, points=61)
    engine = Engine(store, max_samples=500, max_steps_per_pass=10, points_per_pass=10)
    engine.range("m", 0, 600_000, 10_000)  # 3 x 61 = 183 points, in passes of 10 steps
    big = Engine(store, max_samples=150, max_steps_per_pass=10, points_per_pass=10)
    assert _error(big.range, "m", 0, 600_000, 10_000).error_type == "execution"


def test_count_values_cannot_make_a_column_per_value_beyond_the_budget() -> None:
    engine = Engine(MemoryStore(), max_samples=50_000)
    query = 'count_values("v", vector(time()))[2h:1s]'
    assert _error(engine.instant, f"count_over_time({query})", 2 * HOUR_MS).error_type == "execution"


def test_a_query_past_its_timeout_stops_where_it_is() -> None:
    """Without the engine's own deadline checks this runs for hours (a Python quantile per
    window of 8,640 points, at 10,000 steps); the call returning at all proves it stopped."""
    engine = Engine(MemoryStore())
    query = "quantile_over_time(0.5, vector(1)[1d:10s])"
    err = _error(engine.range, query, 0, 600_000_000, 60_000, 0.5)
    assert err.error_type == "timeout"


def test_catastrophic_regex_in_label_replace_is_linear_and_right() -> None:
    engine = Engine(MemoryStore())
    value = "a" * 100_000
    with_src = f'label_replace(vector(1), "src", "{value}c", "", "")'
    (sample,) = engine.instant(f'label_replace({with_src}, "dst", "x", "src", "(a+)+b")', 0).samples
    assert "dst" not in sample.labels
    hit = f'label_replace(label_replace(vector(1), "src", "{value}b", "", ""), "dst", "$1", "src", "(a+)+b")'
    (sample,) = engine.instant(hit, 0).samples
    assert sample.labels["dst"] == value


def test_catastrophic_regex_in_a_matcher_is_linear() -> None:
    store = MemoryStore()
    store.append({"__name__": "m", "v": "a" * 50_000 + "c"}, 0, 1.0)
    store.append({"__name__": "m", "v": "a" * 50_000 + "b"}, 0, 2.0)
    result = Engine(store).instant('m{v=~"(a+)+b"}', 0)
    assert [s.value for s in result.samples] == [2.0]


def test_invalid_re2_is_bad_data() -> None:
    for query in ('m{v=~"a{1001}"}', 'label_replace(vector(1), "a", "b", "c", "(?<")'):
        assert _error(Engine(MemoryStore()).instant, query, 0).error_type in ("bad_data", "execution")


def test_turns_go_in_arrival_order_and_time_out() -> None:
    turns = Turns(1)
    assert turns.take(time.monotonic() + 1)
    order: list[int] = []
    started: list[threading.Event] = []

    def wait(i: int) -> None:
        if turns.take(time.monotonic() + 60):
            order.append(i)
            turns.give_back()

    threads = []
    for i in range(3):
        started.append(threading.Event())
        thread = threading.Thread(target=wait, args=(i,))
        thread.start()
        threads.append(thread)
        while len(turns._queue) < i + 1:  # queued before the next one comes
            time.sleep(0.001)
    assert not turns.take(time.monotonic() + 0.01)  # all taken: the deadline passes first
    turns.give_back()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2]
