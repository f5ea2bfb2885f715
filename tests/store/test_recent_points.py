"""The newest points kept in memory (``store.recent_points``) answer exactly what the store would.

Properties: after any sequence of writes (late, repeated, out of order, far apart, past the memory
bound), a read answered from memory equals the same read answered by chDB itself; a read memory
cannot answer completely goes to chDB; a reopened store loads its newest window; retention drops
points from memory as from the tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.labels import Matcher, MatchOp, to_labels
from model.series import STALE_NAN, Sample
from store.open import Store, open_store
from store.reads import ClickHouseQuerier
from store.recent_points import RecentPoints

T0 = 1_700_000_000_000
NAME = [Matcher("__name__", MatchOp.EQ, "m")]


def _labels(i: int) -> tuple[tuple[str, str], ...]:
    return to_labels({"__name__": "m", "pod": f"p{i}"})


def _from_store(store: Store, start_ms: int, end_ms: int) -> list[tuple[dict[str, str], list, list]]:
    """The same read with memory left out: what chDB holds, once its parts are merged (until then a
    point written twice at one timestamp may read as either; merged, the last written stays)."""
    store.backend.execute(f"OPTIMIZE TABLE {store.backend.database}.samples FINAL")
    querier = ClickHouseQuerier(store.backend)
    querier.recent = None
    return _plain(querier.select(NAME, start_ms, end_ms))


def _plain(series: list) -> list[tuple[dict[str, str], list, list]]:
    return [(s.labels, s.ts_ms.tolist(), s.values.view(np.int64).tolist()) for s in series]


def test_a_fresh_store_answers_from_memory_and_equals_chdb(tmp_path: Path) -> None:
    store = open_store(f"chdb://{tmp_path / 'd'}")
    try:
        recent = store.backend.recent
        store.writer.write(
            [Sample(_labels(i), T0 + 10_000 * k, float(k)) for k in range(50) for i in range(3)]
        )
        assert recent.covers(T0)
        got = recent.select(store.querier.find_series(NAME, T0, T0 + 10**6), T0, T0 + 10**6)
        assert got is not None
        assert len(got) == 3
        assert _plain(store.querier.select(NAME, T0, T0 + 10**6)) == _from_store(store, T0, T0 + 10**6)
    finally:
        store.close()


points = st.lists(
    st.tuples(
        st.integers(0, 4),  # series
        st.integers(0, 400),  # time step (of 10 s)
        st.one_of(st.floats(allow_nan=False, width=64), st.just(STALE_NAN)),
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(points, min_size=1, max_size=6), window_steps=st.integers(5, 500))
def test_any_writes_read_back_as_chdb_holds_them(tmp_path_factory, batches, window_steps) -> None:
    """Batches in any order (repeats, late points, gaps); a small window and a small memory bound,
    so that covering less time and making room happen too."""
    folder = tmp_path_factory.mktemp("recent")
    store = open_store(f"chdb://{folder}")
    try:
        # A small memory (two pages of 4 points per series at most) and window, for the edges.
        store.backend.recent.__init__(window_ms=window_steps * 10_000, max_points=40, page_points=4)
        store.backend.recent.load(store.backend)
        store.writer._recent = store.backend.recent
        for batch in batches:
            store.writer.write([Sample(_labels(i), T0 + 10_000 * k, v) for i, k, v in batch])
        recent = store.backend.recent
        for start_step, end_step in ((0, 400), (200, 400), (390, 400), (0, 10), (100, 150), (150, 150)):
            start, end = T0 + 10_000 * start_step, T0 + 10_000 * end_step
            expected = _from_store(store, start, end)
            assert _plain(store.querier.select(NAME, start, end)) == expected
            if recent.covers(start):
                got = recent.select(store.querier.find_series(NAME, start, end), start, end)
                assert got is not None
                assert _plain(got) == expected
    finally:
        store.close()


def test_reopened_store_loads_its_newest_window(tmp_path: Path) -> None:
    path = f"chdb://{tmp_path / 'd'}"
    store = open_store(path)
    store.writer.write([Sample(_labels(0), T0 + 10_000 * k, float(k)) for k in range(4000)])
    store.close()
    store = open_store(path)
    try:
        recent = store.backend.recent
        newest = T0 + 10_000 * 3999
        assert recent.covers(newest - recent.window_ms)
        assert not recent.covers(T0)  # older than the window: read from chDB
        for start in (T0, newest - recent.window_ms, newest - 60_000):
            assert _plain(store.querier.select(NAME, start, newest)) == _from_store(store, start, newest)
        got = recent.select(store.querier.find_series(NAME, newest - 60_000, newest), newest - 60_000, newest)
        assert got is not None
        assert got[0].values.tolist() == [float(k) for k in range(3993, 4000)]
    finally:
        store.close()


def test_a_late_point_before_the_window_is_read_from_chdb(tmp_path: Path) -> None:
    store = open_store(f"chdb://{tmp_path / 'd'}")
    try:
        recent = store.backend.recent
        recent.window_ms = 60_000
        store.writer.write([Sample(_labels(0), T0 + 10_000 * k, 1.0) for k in range(100)])
        assert not recent.covers(T0)
        store.writer.write([Sample(_labels(0), T0 + 5_000, 7.0)])  # late, before what memory covers
        assert 7.0 in store.querier.select(NAME, T0, T0 + 10**7)[0].values.tolist()
    finally:
        store.close()


def test_retention_drops_points_from_memory_too(tmp_path: Path) -> None:
    store = open_store(f"chdb://{tmp_path / 'd'}")
    try:
        day = 86_400_000
        base = (T0 // day) * day
        store.writer.write([Sample(_labels(0), base - 60_000, 1.0), Sample(_labels(0), base + 60_000, 2.0)])
        store.backend.recent.forget_before(base)
        assert store.backend.recent.covers(base - 3_600_000)
        got = store.querier.select(NAME, base - 3_600_000, base + 3_600_000)
        assert [s.values.tolist() for s in got] == [[2.0]]
    finally:
        store.close()


def test_memory_bound_is_kept_and_reads_stay_right() -> None:
    recent = RecentPoints(window_ms=10**9, max_points=128, page_points=8)
    recent.covered_from_ms = 0
    slots = np.asarray(recent.slots_of([11, 22]), np.int64)
    for k in range(100):
        recent.append(slots, np.array([k * 1000, k * 1000]), np.array([float(k), float(-k)]))
    assert len(recent._fill) <= 16  # 128 points in pages of 8
    assert recent.covers(99_000)
    assert not recent.covers(0)
    got = recent.select({11: {"__name__": "a"}, 22: {"__name__": "b"}}, recent.covered_from_ms, 99_000)
    assert got is not None
    first = -(-recent.covered_from_ms // 1000)  # the first whole second covered
    assert got[0].ts_ms.tolist() == [k * 1000 for k in range(first, 100)]
    assert got[1].values.tolist() == [float(-k) for k in range(first, 100)]
