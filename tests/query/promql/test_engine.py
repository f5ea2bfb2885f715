"""Engine behaviours beyond the conformance suite: range queries, push-down, errors, limits."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from model.labels import Matcher
from model.series import STALE_NAN, Series
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from query.promql.value import Matrix, Scalar, String, Vector
from store.memory import MemoryStore


class RecordingStore(MemoryStore):
    """Remembers every ``select`` so tests can check the time range pushed down."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list[Matcher], int, int]] = []

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        self.calls.append((matchers, start_ms, end_ms))
        return super().select(matchers, start_ms, end_ms)


def _counter_store(store: MemoryStore | None = None) -> MemoryStore:
    store = store or MemoryStore()
    for i in range(0, 361):  # one hour every 10 s
        store.append({"__name__": "req_total", "job": "a"}, i * 10_000, 10.0 * i)
        store.append({"__name__": "req_total", "job": "b"}, i * 10_000, 20.0 * i)
    return store


def test_range_query_steps_start_at_start_and_stay_within_end() -> None:
    result = Engine(_counter_store()).range("req_total", 100_000, 250_000, 60_000)
    assert isinstance(result, Matrix)
    assert result.series[0].ts_ms.tolist() == [100_000, 160_000, 220_000]


def test_range_query_sorts_series_by_labels() -> None:
    result = Engine(_counter_store()).range("-req_total", 0, 60_000, 30_000)
    assert [s.labels for s in result.series] == [{"job": "a"}, {"job": "b"}]


def test_scalar_range_query_gives_one_unlabelled_series() -> None:
    result = Engine(MemoryStore()).range("time()", 0, 120_000, 60_000)
    assert len(result.series) == 1
    assert result.series[0].labels == {}
    assert result.series[0].values.tolist() == [0.0, 60.0, 120.0]


def test_selector_asks_the_store_once_for_the_whole_range() -> None:
    store = RecordingStore()
    _counter_store(store)
    Engine(store).range("rate(req_total[5m] offset 1m)", 1_000_000, 2_000_000, 20_000)
    assert len(store.calls) == 1
    _, start, end = store.calls[0]
    assert (start, end) == (1_000_000 - 300_000 - 60_000, 2_000_000 - 60_000)


def test_instant_selector_range_includes_lookback() -> None:
    store = RecordingStore()
    Engine(store, lookback_delta_ms=120_000).instant("up", 1_000_000)
    assert [(s, e) for _, s, e in store.calls] == [(880_000, 1_000_000)]


def test_at_modifier_pins_the_selector_time() -> None:
    store = RecordingStore()
    _counter_store(store)
    result = Engine(store).range("req_total{job='a'} @ 100", 1_000_000, 2_000_000, 500_000)
    assert store.calls[0][1:] == (100_000 - 300_000, 100_000)
    assert result.series[0].values.tolist() == [100.0, 100.0, 100.0]


def test_at_start_and_end_refer_to_the_query_range() -> None:
    engine = Engine(_counter_store())
    start = engine.range("req_total{job='a'} @ start()", 600_000, 1_200_000, 300_000)
    end = engine.range("req_total{job='a'} @ end()", 600_000, 1_200_000, 300_000)
    assert start.series[0].values.tolist() == [600.0] * 3
    assert end.series[0].values.tolist() == [1200.0] * 3


def test_staleness_marker_ends_a_series_before_lookback() -> None:
    store = MemoryStore()
    store.append({"__name__": "g"}, 0, 1.0)
    store.append({"__name__": "g"}, 10_000, STALE_NAN)
    engine = Engine(store)
    assert len(engine.instant("g", 5_000).samples) == 1  # type: ignore[union-attr]
    assert engine.instant("g", 20_000).samples == []  # type: ignore[union-attr]


def test_subquery_points_are_aligned_to_the_step() -> None:
    result = Engine(_counter_store()).instant("req_total{job='a'}[1m:25s]", 1_000_000)
    assert isinstance(result, Matrix)
    assert result.series[0].ts_ms.tolist() == [950_000, 975_000, 1_000_000]


def test_subquery_default_step_is_configurable() -> None:
    result = Engine(_counter_store(), default_subquery_step_ms=20_000).instant(
        "count_over_time(req_total{job='a'}[1m:])", 1_000_000
    )
    assert result.samples[0].value == 4  # type: ignore[union-attr]


def test_instant_result_types() -> None:
    engine = Engine(MemoryStore())
    assert engine.instant("1 + 2", 5_000) == Scalar(5_000, 3.0)
    assert engine.instant('"hi"', 5_000) == String(5_000, "hi")
    assert isinstance(engine.instant("vector(1)", 5_000), Vector)


@pytest.mark.parametrize(
    ("query", "error_type"),
    [
        ("sum(", "bad_data"),
        ("rate(x)", "bad_data"),
        ("x[5m]", "bad_data"),
        ('"text"', "bad_data"),
    ],
)
def test_range_query_errors(query: str, error_type: str) -> None:
    with pytest.raises(PromQLError) as info:
        Engine(MemoryStore()).range(query, 0, 60_000, 15_000)
    assert info.value.error_type == error_type


def test_many_to_many_matching_is_an_execution_error() -> None:
    store = MemoryStore()
    for inst in ("1", "2"):
        store.append({"__name__": "a", "job": "j", "instance": inst}, 0, 1.0)
        store.append({"__name__": "b", "job": "j", "instance": inst}, 0, 1.0)
    with pytest.raises(PromQLError) as info:
        Engine(store).instant("a + on(job) b", 0)
    assert info.value.error_type == "execution"
    assert "many-to-many matching not allowed" in info.value.message


def test_same_labelset_after_dropping_name_is_an_execution_error() -> None:
    store = MemoryStore()
    store.append({"__name__": "a", "job": "j"}, 0, 1.0)
    store.append({"__name__": "b", "job": "j"}, 0, 1.0)
    with pytest.raises(PromQLError, match="same labelset"):
        Engine(store).instant("abs({job='j'})", 0)


def test_max_samples_limit() -> None:
    with pytest.raises(PromQLError) as info:
        Engine(_counter_store(), max_samples=10).instant("req_total[1h]", 3_600_000)
    assert info.value.error_type == "execution"


def test_timeout() -> None:
    with pytest.raises(PromQLError) as info:
        Engine(_counter_store(), timeout_s=-1).instant("req_total", 0)
    assert info.value.error_type == "timeout"


def test_rate_columnar_path_matches_per_step_path() -> None:
    store = MemoryStore()
    rng = np.random.default_rng(7)
    value = 0.0
    for i in range(600):
        value = 0.0 if rng.random() < 0.02 else value + float(rng.integers(0, 50))
        store.append({"__name__": "c"}, i * 15_000 + int(rng.integers(0, 3000)), value)
    engine = Engine(store)
    for fn in ("rate", "increase", "delta"):
        matrix = engine.range(f"{fn}(c[2m])", 300_000, 8_000_000, 45_000)
        for t, v in zip(matrix.series[0].ts_ms.tolist(), matrix.series[0].values.tolist(), strict=True):
            instant = engine.instant(f"{fn}(c[2m])", t)
            assert math.isclose(instant.samples[0].value, v, rel_tol=1e-9, abs_tol=1e-12)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "query", ["limitk(1, up)", "sort_by_label(up, 'a')", "mad_over_time(up[5m])", "info(up)"]
)
def test_functions_newer_than_2_42_are_bad_data(query: str) -> None:
    with pytest.raises(PromQLError) as info:
        Engine(MemoryStore()).instant(query, 0)
    assert info.value.error_type == "bad_data"


class BrokenStore(MemoryStore):
    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        raise ConnectionError("store is down")


def test_store_failures_are_internal_errors() -> None:
    with pytest.raises(PromQLError) as info:
        Engine(BrokenStore()).range("up", 0, 60_000, 15_000)
    assert info.value.error_type == "internal"
    assert isinstance(info.value.__cause__, ConnectionError)


class _BlockingStore(MemoryStore):
    """A store whose reads wait until released: a query that holds its slot for as long as we say."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        self.entered.set()
        self.release.wait(10)
        return super().select(matchers, start_ms, end_ms)


def test_queries_past_the_concurrency_limit_wait_and_time_out_in_the_queue() -> None:
    store = _BlockingStore()
    store.append({"__name__": "up"}, 0, 1.0)
    engine = Engine(store, max_concurrent=1)
    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(engine.instant("up", 0)))
    first.start()
    assert store.entered.wait(5)
    with pytest.raises(PromQLError) as err:
        engine.instant("vector(1)", 0, timeout_s=0.2)  # needs no read, but no slot is free
    assert (err.value.error_type, str(err.value)) == ("timeout", "query timed out in query queue")
    store.release.set()
    first.join(5)
    assert isinstance(results[0], Vector)
    assert results[0].samples[0].value == 1.0
    assert engine.instant("vector(2)", 0).samples[0].value == 2.0  # the slot is free again


@pytest.mark.parametrize(
    "query",
    [
        "sum by (job) (rate(req_total[1m]))",
        "req_total / ignoring(job) group_left sum(req_total)",
        "max_over_time(req_total[5m:30s]) - req_total offset 1m",
        "count(req_total @ end())",
    ],
)
def test_a_range_in_many_passes_equals_one_pass(query: str) -> None:
    """Passes (the first small, later ones sized by points and run two at a time) change nothing."""
    store = _counter_store()
    whole = Engine(store, max_steps_per_pass=10_000).range(query, 0, 3_600_000, 10_000)
    passes = Engine(store, max_steps_per_pass=7, points_per_pass=20).range(query, 0, 3_600_000, 10_000)
    assert [s.labels for s in passes.series] == [s.labels for s in whole.series]
    for a, b in zip(passes.series, whole.series, strict=True):
        np.testing.assert_array_equal(a.ts_ms, b.ts_ms)
        np.testing.assert_array_equal(a.values, b.values)
