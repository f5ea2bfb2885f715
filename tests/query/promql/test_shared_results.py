"""Aggregations shared between queries (``query.promql.shared_results``) change no answer.

Properties: a query that takes another's aggregation answers exactly what computing it afresh
(``share=False``) answers, also after a write in between, and in another project's scope; the
first computes while the others wait (one computation); a failed computation leaves nothing;
entries expire; a taken block is the caller's own; a query refused for its samples is refused
whether it computed or took the aggregation.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from model.labels import to_labels
from model.series import Sample
from query.api.app import build_querier
from query.api.tenancy import confined_to
from query.promql.blocks import Col, VectorBlock
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from query.promql.shared_results import Computed, SharedResults
from store.open import Store

T0 = 1_700_000_000_000
QUANTILES = [
    f"histogram_quantile({q}, sum by (le) (rate(lat_bucket{{service_id='s'}}[1m])))" for q in (0.5, 0.9, 0.99)
]


def _write(store: Store, project: str, scale: float, minutes: int = 10) -> None:
    batch = []
    for i in range(minutes * 6):
        for n, le in enumerate(("0.1", "1", "+Inf")):
            labels = {"__name__": "lat_bucket", "service_id": "s", "le": le, "project_id": project}
            batch.append(Sample(to_labels(labels), T0 + 10_000 * i, scale * i * (n + 1)))
    store.writer.write(batch)


def _answer(engine: Engine, query: str, share: bool) -> list[tuple[dict[str, str], list[int], list[float]]]:
    m = engine.range(query, T0 + 60_000, T0 + 540_000, 15_000, share=share)
    return [(s.labels, s.ts_ms.tolist(), s.values.tolist()) for s in m.series]


def test_taken_aggregations_answer_as_computed_ones(chdb_store: Store) -> None:
    _write(chdb_store, "a", 1.0)
    engine = Engine(build_querier(chdb_store))
    assert engine.shared is not None
    shared = [_answer(engine, q, True) for q in QUANTILES]
    assert engine.shared.hits == 2  # the 0.9 and 0.99 queries took the 0.5 query's sum
    assert shared == [_answer(engine, q, False) for q in QUANTILES]
    assert shared[0] != shared[2]


def test_a_write_in_between_is_seen(chdb_store: Store) -> None:
    _write(chdb_store, "a", 1.0)
    engine = Engine(build_querier(chdb_store))
    before = _answer(engine, QUANTILES[0], True)
    _write(chdb_store, "a", 7.0, minutes=5)  # the same series and times, other values
    after = _answer(engine, QUANTILES[0], True)
    assert after == _answer(engine, QUANTILES[0], False)
    assert after != before


def test_a_project_never_takes_another_projects_aggregation(chdb_store: Store) -> None:
    _write(chdb_store, "a", 1.0)
    _write(chdb_store, "b", 3.0)
    engine = Engine(build_querier(chdb_store))
    query = "sum by (le) (rate(lat_bucket[1m]))"
    with confined_to("a"):
        a = _answer(engine, query, True)
    with confined_to("b"):
        b = _answer(engine, query, True)
        assert b == _answer(engine, query, False)
    with confined_to("a"):
        assert a == _answer(engine, query, False)
    assert a != b


def test_a_refused_query_is_refused_when_it_takes_the_aggregation(chdb_store: Store) -> None:
    _write(chdb_store, "a", 1.0)
    roomy = Engine(build_querier(chdb_store))
    query = QUANTILES[0]
    needed = None
    for limit in (100, 200, 400, 800, 1600, 3200, 6400):  # the least that answers
        try:
            Engine(build_querier(chdb_store), max_samples=limit).range(query, T0, T0 + 540_000, 15_000)
        except PromQLError:
            continue
        needed = limit
        break
    assert needed is not None
    tight = Engine(build_querier(chdb_store), max_samples=needed // 2)
    tight.shared = roomy.shared  # the same shared entries, filled by a roomy engine
    roomy.range(query, T0, T0 + 540_000, 15_000)
    with pytest.raises(PromQLError, match="too many samples"):
        tight.range(query, T0, T0 + 540_000, 15_000)
    assert roomy.shared is not None
    assert roomy.shared.hits >= 1


def _computed(value: float) -> Computed:
    block = VectorBlock([Col({"le": "1"}, np.array([value]), np.array([True]))])
    return Computed(block, 3, 5)


def test_one_computes_while_the_others_wait() -> None:
    shared = SharedResults(lambda: 1)
    calls = []
    started = threading.Event()

    def compute() -> Computed:
        calls.append(1)
        started.set()
        time.sleep(0.2)  # the others arrive meanwhile; they must wait, not compute
        return _computed(2.0)

    results: list[tuple[Computed, bool]] = []
    first = threading.Thread(target=lambda: results.append(shared.get("k", compute, time.monotonic() + 60)))
    first.start()
    started.wait()
    others = [
        threading.Thread(target=lambda: results.append(shared.get("k", compute, time.monotonic() + 60)))
        for _ in range(3)
    ]
    for t in others:
        t.start()
    for t in (first, *others):
        t.join()
    assert len(calls) == 1
    assert sorted(taken for _, taken in results) == [False, True, True, True]
    assert all(c.block.cols[0].values.tolist() == [2.0] for c, _ in results)


def test_a_failed_computation_leaves_nothing() -> None:
    shared = SharedResults(lambda: 1)

    def fail() -> Computed:
        raise PromQLError("execution", "boom")

    with pytest.raises(PromQLError):
        shared.get("k", fail, time.monotonic() + 60)
    computed, taken = shared.get("k", lambda: _computed(1.0), time.monotonic() + 60)
    assert not taken
    assert computed.block.cols[0].values.tolist() == [1.0]


def test_entries_expire_and_taken_blocks_are_copies() -> None:
    now = [0.0]
    shared = SharedResults(lambda: 1, ttl_s=5.0, clock=lambda: now[0])
    first, _ = shared.get("k", lambda: _computed(1.0), time.monotonic() + 60)
    first.block.cols[0].values[0] = 99.0  # the computing caller changes its own block
    taken, was_taken = shared.get("k", lambda: _computed(2.0), time.monotonic() + 60)
    assert was_taken
    assert taken.block.cols[0].values.tolist() == [1.0]
    assert (taken.peak_points, taken.samples) == (3, 5)
    taken.block.cols[0].values[0] = 42.0
    again, _ = shared.get("k", lambda: _computed(2.0), time.monotonic() + 60)
    assert again.block.cols[0].values.tolist() == [1.0]
    now[0] = 6.0
    fresh, was_taken = shared.get("k", lambda: _computed(2.0), time.monotonic() + 60)
    assert not was_taken
    assert fresh.block.cols[0].values.tolist() == [2.0]
