"""Every series in memory (``store.series_index``) answers exactly what the ``series`` table does.

Properties: after any writes (series appearing on scattered days, late days, repeats), every
look-up (series, label names, label values) from memory equals the same look-up in SQL, for any
matchers and day range; so it does after a reopen, after a statement (dropped partitions) and
with inserts that complete while the index reads the table; past its bound it answers None and
the querier's answer (from SQL) is still right.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from store.open import Store, open_store
from store.reads import ClickHouseQuerier
from store.series_index import SeriesIndex, _add_day, _literal_alternatives

DAY = 86_400_000
T0 = 1_700_000_000_000 // DAY * DAY  # a day's start
DAY0 = T0 // DAY

NAMES = ("__name__", "pod", "svc", "code", "absent")
VALUES = (
    *("", "m", "n", "p1", "p2", "s1", "200", "500", "x"),
    *(".*", ".+", "p.*", "5..", "(?i)P1", "p1\nx", "p1.x", "p1\\nx"),
    # plain alternatives, as Grafana's multi-value variables send them (found without a regex)
    *("p1|s1", "(p1|200)", "p1|p2|nope", "p\\-1|m", "m|", "(m|n)|x", "p1\\|x"),
)


def _sql(store: Store, kind: str, *args: Any) -> Any:
    """The same look-up answered by SQL only."""
    q = ClickHouseQuerier(store.backend)
    q.index = None
    return {"series": q._find_series, "names": q._label_names, "values": q._label_values}[kind](*args)


label_sets = st.fixed_dictionaries(
    {"__name__": st.sampled_from(["m", "n"])},
    optional={k: st.sampled_from(["p1", "p2", "s1", "200", "500", "p1\nx"]) for k in ("pod", "svc", "code")},
)
writes = st.lists(st.tuples(label_sets, st.integers(0, 9)), min_size=1, max_size=30)
matchers = st.lists(
    st.builds(Matcher, st.sampled_from(NAMES), st.sampled_from(list(MatchOp)), st.sampled_from(VALUES)),
    max_size=3,
)


def test_every_look_up_equals_sql(tmp_path: Path) -> None:
    """One store for all examples (chDB holds one folder per process): writes accumulate."""
    store = open_store(f"chdb://{tmp_path / 'd'}")

    @settings(max_examples=100, deadline=None)
    @given(
        batch=writes,
        ms=matchers,
        first=st.integers(-2, 11),
        length=st.integers(0, 12),
        name=st.sampled_from(NAMES),
    )
    def check(
        batch: list[tuple[dict[str, str], int]], ms: list[Matcher], first: int, length: int, name: str
    ) -> None:
        store.writer.write([Sample(to_labels(labels), T0 + day * DAY + 1000, 1.0) for labels, day in batch])
        index = store.backend.series_index
        lo, hi = T0 + first * DAY, T0 + (first + length) * DAY
        days = (DAY0 + first, DAY0 + first + length)
        assert index.find(ms, *days) == _sql(store, "series", ms, lo, hi)
        assert index.label_names(ms, *days) == _sql(store, "names", ms, lo, hi)
        assert index.label_values(name, ms, *days) == _sql(store, "values", name, ms, lo, hi)
        # and the querier, which callers use, answers the same
        assert store.querier.find_series(ms, lo, hi) == _sql(store, "series", ms, lo, hi)

    try:
        check()
    finally:
        store.close()


def _everything(store: Store) -> dict[int, dict[str, str]]:
    return _sql(store, "series", [], 0, 2**62)


def test_reopened_store_loads_the_table(tmp_path: Path) -> None:
    path = f"chdb://{tmp_path / 'd'}"
    s = open_store(path)
    try:
        s.writer.write(
            [Sample(to_labels({"__name__": "m", "pod": f"p{i}"}), T0 + (i % 3) * DAY, 1.0) for i in range(20)]
        )
    finally:
        s.close()
    s = open_store(path)
    try:
        assert s.backend.series_index.find([], 0, 10**6) == _everything(s)
        one_day = s.backend.series_index.find([], DAY0 + 1, DAY0 + 1)
        assert one_day == _sql(s, "series", [], T0 + DAY, T0 + DAY + 1)
        assert len(one_day) == 7
    finally:
        s.close()


def test_a_statement_makes_it_read_the_table_again(tmp_path: Path) -> None:
    s = open_store(f"chdb://{tmp_path / 'd'}")
    try:
        s.writer.write([Sample(to_labels({"__name__": "m", "pod": "old"}), T0, 1.0)])
        s.writer.write([Sample(to_labels({"__name__": "m", "pod": "new"}), T0 + 40 * DAY, 1.0)])
        month = s.backend.query(f"SELECT toYYYYMM(toDate({T0 // 1000})) AS m").column(0)[0].as_py()
        s.backend.execute(f"ALTER TABLE {s.backend.database}.series DROP PARTITION {month}")
        found = s.backend.series_index.find([], 0, 10**6)
        assert found == _everything(s)
        assert [labels["pod"] for labels in found.values()] == ["new"]
    finally:
        s.close()


def test_inserts_while_the_table_is_read_are_kept(tmp_path: Path) -> None:
    s = open_store(f"chdb://{tmp_path / 'd'}")
    try:
        s.writer.write([Sample(to_labels({"__name__": "m", "pod": "before"}), T0, 1.0)])
        backend = s.backend
        real_query = backend.query
        written = []

        def query_then_write(sql: str, params: Any = None) -> Any:
            answer = real_query(sql, params)
            if "groupUniqArray" in sql and not written:  # the table is read; a series lands now
                written.append(
                    s.writer.write([Sample(to_labels({"__name__": "m", "pod": "during"}), T0, 1.0)])
                )
            return answer

        backend.query = query_then_write  # type: ignore[method-assign]
        try:
            backend.series_index.load(backend)
        finally:
            backend.query = real_query  # type: ignore[method-assign]
        assert written == [1]
        found = backend.series_index.find([], 0, 10**6)
        assert sorted(labels["pod"] for labels in found.values()) == ["before", "during"]
        assert found == _everything(s)
    finally:
        s.close()


def test_past_its_bound_it_answers_none_and_sql_answers(tmp_path: Path) -> None:
    s = open_store(f"chdb://{tmp_path / 'd'}")
    try:
        s.backend.series_index.max_series = 5
        s.writer.write([Sample(to_labels({"__name__": "m", "pod": f"p{i}"}), T0, 1.0) for i in range(8)])
        assert s.backend.series_index.find([], 0, 10**6) is None
        assert len(s.querier.find_series([Matcher("__name__", MatchOp.EQ, "m")], 0, 2**62)) == 8
    finally:
        s.close()


@given(st.lists(st.integers(0, 40), max_size=40))
def test_day_runs_hold_exactly_the_days_added(days: list[int]) -> None:
    runs = [days[0], days[0]] if days else []
    for day in days[1:]:
        _add_day(runs, day)
    held = {d for i in range(0, len(runs), 2) for d in range(runs[i], runs[i + 1] + 1)}
    assert held == set(days)
    # rising, disjoint and not touching: one run per stretch of consecutive days
    assert all(runs[i] <= runs[i + 1] for i in range(len(runs) - 1))
    assert all(runs[i] + 1 < runs[i + 1] for i in range(1, len(runs) - 1, 2))


def test_an_unloaded_index_answers_none() -> None:
    assert SeriesIndex().find([], 0, 1) is None


def test_plain_alternatives_are_read_as_their_strings() -> None:
    assert _literal_alternatives("a|b") == ["a", "b"]
    assert _literal_alternatives("(svc-001|svc-002)") == ["svc-001", "svc-002"]
    assert _literal_alternatives("10\\.0\\.0\\.1:8000") == ["10.0.0.1:8000"]
    for pattern in ("a.b", "a\\d", "(a)|(b)", "a\\", "(?i)a", "[ab]", "a+", "^a$"):
        assert _literal_alternatives(pattern) is None, pattern


def test_look_ups_past_the_work_bounds_are_left_to_sql(tmp_path: Path, monkeypatch) -> None:
    """A look-up holds the index (and keeps the writer waiting) for a bounded time: past the bounds
    it answers None and the querier asks SQL; within them a regex over too many values is checked
    series by series. Answers stay equal to SQL's either way."""
    import store.series_index as series_index

    monkeypatch.setattr(series_index, "MAX_VALUES_TRIED", 3)
    monkeypatch.setattr(series_index, "MAX_CANDIDATES", 5)
    s = open_store(f"chdb://{tmp_path / 'd'}")
    try:
        s.writer.write(
            [
                Sample(to_labels({"__name__": "m", "pod": f"p{i}", "svc": f"s{i % 2}"}), T0, 1.0)
                for i in range(20)
            ]
        )
        index = s.backend.series_index
        cases = [
            ([Matcher("__name__", MatchOp.EQ, "m")], None),  # 20 candidates: SQL's
            ([Matcher("pod", MatchOp.EQ, "p3")], 1),
            ([Matcher("pod", MatchOp.RE, "p1.")], None),  # 20 values: not tried; all 20 candidates
            ([Matcher("pod", MatchOp.RE, "p1|p2|p17")], 3),  # plain alternatives: looked up
            ([Matcher("pod", MatchOp.RE, "p1."), Matcher("pod", MatchOp.RE, "p11|p12|p3")], 2),
        ]
        for ms, expected in cases:
            found = index.find(ms, 0, 10**6)
            assert (None if found is None else len(found)) == expected, ms
            assert s.querier.find_series(ms, 0, 2**62) == _sql(s, "series", ms, 0, 2**62)
    finally:
        s.close()
