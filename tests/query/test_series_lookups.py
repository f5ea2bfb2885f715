"""The cache of series look-ups: never an answer the store would not give now, never another scope's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from query.api.tenancy import TenantQuerier, confined_to
from store.open import Store, open_store
from store.series_lookups import MAX_TOTAL_ENTRIES, SeriesLookups

T0 = 1_700_000_000_000
NAME = Matcher("__name__", MatchOp.EQ, "req_total")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'chdb'}")
    try:
        yield opened
    finally:
        opened.close()


def _write(store: Store, ts_ms: int = T0, **labels: str) -> None:
    store.writer.write([Sample(to_labels({"__name__": "req_total", **labels}), ts_ms, 1.0)])


def _services(store: Store, *matchers: Matcher) -> list[str]:
    found = store.querier.select([NAME, *matchers], T0 - 60_000, T0 + 60_000)
    return sorted(s.labels["service_id"] for s in found)


def test_a_repeated_lookup_comes_from_memory(store: Store) -> None:
    _write(store, service_id="a")
    assert _services(store) == ["a"]
    hits = store.querier.lookups.hits
    assert _services(store) == ["a"]
    assert store.querier.lookups.hits == hits + 1


def test_a_series_written_after_a_cached_lookup_is_seen(store: Store) -> None:
    _write(store, service_id="a")
    regex = Matcher("service_id", MatchOp.RE, ".*")
    assert _services(store, regex) == ["a"]
    assert store.querier.label_values("service_id", [NAME], T0, T0) == ["a"]
    assert store.querier.label_names([NAME], T0, T0) == ["__name__", "service_id"]
    _write(store, service_id="b", zone="z")
    assert _services(store, regex) == ["a", "b"]
    assert store.querier.label_values("service_id", [NAME], T0, T0) == ["a", "b"]
    assert store.querier.label_names([NAME], T0, T0) == ["__name__", "service_id", "zone"]


def test_series_dropped_by_a_statement_are_gone_from_the_next_lookup(store: Store) -> None:
    _write(store, service_id="a")
    assert set(store.querier.find_series([NAME], T0, T0)) != set()
    store.backend.execute(f"TRUNCATE TABLE {store.backend.database}.series")
    assert store.querier.find_series([NAME], T0, T0) == {}


def test_a_cached_answer_never_reaches_another_project(store: Store) -> None:
    _write(store, service_id="a", project_id="p1")
    _write(store, service_id="b", project_id="p2")
    scoped = TenantQuerier(store.querier)

    def services(project: str | None) -> list[str]:
        with confined_to(project):
            return sorted(s.labels["service_id"] for s in scoped.select([NAME], T0 - 1, T0 + 1))

    for _ in range(2):  # the second round answers from memory
        assert services(None) == ["a", "b"]
        assert services("p1") == ["a"]
        assert services("p2") == ["b"]
        with confined_to("p1"):
            assert scoped.label_values("service_id", [], T0, T0) == ["a"]
            assert next(iter(scoped.find_series([NAME], T0, T0).values()))["project_id"] == "p1"
    assert store.querier.lookups.hits > 0


def test_callers_cannot_change_a_cached_answer(store: Store) -> None:
    _write(store, service_id="a")
    store.querier.find_series([NAME], T0, T0).clear()
    store.querier.label_values("service_id", [NAME], T0, T0).append("x")
    assert store.querier.label_values("service_id", [NAME], T0, T0) == ["a"]
    assert len(store.querier.find_series([NAME], T0, T0)) == 1


_OPS = st.lists(
    st.tuples(
        st.sampled_from(("write", "look")),
        st.sampled_from(("a", "b", "c", "")),
        st.sampled_from((MatchOp.EQ, MatchOp.NE, MatchOp.RE, MatchOp.NRE)),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_cached_lookups_always_equal_the_store_now(
    store: Store, ops: list[tuple[str, str, MatchOp, int]]
) -> None:
    """Writes and look-ups interleaved at random (data of earlier examples stays): each answer is
    what the store answers uncached at that moment."""
    querier = store.querier
    for op, value, match_op, day in ops:
        ts = T0 + day * 86_400_000
        if op == "write":
            _write(store, ts, service_id=value or "none", zone=value)
            continue
        pattern = value + ".*" if match_op in (MatchOp.RE, MatchOp.NRE) else value
        matchers = [NAME, Matcher("zone", match_op, pattern)]
        assert querier.find_series(matchers, ts, ts) == querier._find_series(matchers, ts, ts)
        assert querier.label_values("service_id", matchers, T0, ts) == querier._label_values(
            "service_id", matchers, T0, ts
        )


def test_memory_stays_bounded_whatever_is_asked() -> None:
    class Backend:
        series_changes = 0

    lookups = SeriesLookups(Backend(), max_entries=50)
    for i in range(500):
        lookups.cached(("k", i), lambda i=i: list(range(i * 37 % 9_000)))
    assert len(lookups._entries) <= 50
    assert sum(len(answer) for _, answer in lookups._entries.values()) == lookups._total <= MAX_TOTAL_ENTRIES
