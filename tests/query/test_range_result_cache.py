"""The range-answer cache: the same answer as computed whole, late data and scope respected."""

from __future__ import annotations

import threading
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
from store.write_marks import WriteMarks
from store.writes import SampleWriter

STEP = 10_000


def _matrix(start: int, end: int) -> Matrix:
    ts = np.arange(start, end + 1, STEP, dtype=np.int64)
    return Matrix([MatrixSeries({"a": "1"}, ts, ts.astype(np.float64))])


class _Fake:
    def __init__(self, lookahead_ms: int = 0) -> None:
        self.stamp: object = 1
        self.now = 1_000_000_000
        self.calls: list[tuple[int, int]] = []
        self.marks = WriteMarks()
        self.cache = RangeResultCache(
            lambda: self.stamp, self.marks, lambda _: self.now - lookahead_ms if lookahead_ms else None
        )

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


def test_a_slid_window_computes_only_the_new_steps() -> None:
    f = _Fake()
    end = f.now
    _same(f.ask(end - 900_000, end), _matrix(end - 900_000, end))
    f.marks.note(end + STEP)  # the next scrapes: newer than every step kept
    f.marks.note(end + 60_000)
    _same(f.ask(end - 840_000, end + 60_000), _matrix(end - 840_000, end + 60_000))
    assert f.calls == [(end - 900_000, end), (end + STEP, end + 60_000)]
    _same(f.ask(end - 840_000, end + 60_000), _matrix(end - 840_000, end + 60_000))
    assert f.calls[2:] == []  # nothing written since: nothing computed
    assert f.cache.hits == 2


def test_a_write_recomputes_the_steps_from_its_oldest_point_on() -> None:
    f = _Fake()
    end = f.now
    f.ask(end - 900_000, end)
    f.marks.note(end - 600_000 + 1)  # a late point just after a step: that step keeps
    f.marks.note(end + STEP)
    _same(f.ask(end - 900_000, end + STEP), _matrix(end - 900_000, end + STEP))
    assert f.calls[1:] == [(end - 600_000 + STEP, end + STEP)]
    f.marks.note(end - 300_000)  # on a step: that step is computed again
    f.ask(end - 900_000, end + STEP)
    assert f.calls[2:] == [(end - 300_000, end + STEP)]
    f.marks.note(end - 2_000_000)  # before the whole window: all of it
    f.ask(end - 900_000, end + STEP)
    assert f.calls[3:] == [(end - 900_000, end + STEP)]


def test_steps_within_the_lookahead_of_now_are_not_kept() -> None:
    f = _Fake(lookahead_ms=25_000)
    end = f.now
    f.ask(end - 900_000, end)
    f.ask(end - 900_000, end)
    # kept up to the last step 25 s before now: the steps after it are computed each time
    assert f.calls == [(end - 900_000, end), (end - 20_000, end)]
    f.ask(end - 900_000, end - 60_000)  # an end a minute ago: every step had settled, all kept
    assert f.calls[2:] == []
    f.ask(end - 900_000, end + 60_000)  # an end after now: nothing after now - 25 s is kept
    assert f.calls[2:] == [(end - 20_000, end + 60_000)]
    f.now += 60_000  # time passes: those steps have settled, and are kept once computed again
    f.ask(end - 900_000, end + 60_000)
    f.ask(end - 900_000, end + 60_000)
    assert f.calls[3:] == [(end - 20_000, end + 60_000), (end + 40_000, end + 60_000)]


@pytest.mark.parametrize(
    "change", ["stamp", "write before", "scope", "text", "grid", "offset", "at", "earlier start"]
)
def test_no_reuse_across_a_change(change: str) -> None:
    f = _Fake()
    end = f.now - 3_600_000
    text = {"offset": "x offset 5m", "at": "x @ 100"}.get(change, "q")
    f.ask(end - 900_000, end, text)
    start = {"grid": end - 895_000, "earlier start": end - 910_000}.get(change, end - 900_000)
    if change == "stamp":
        f.stamp = 2
    if change == "write before":
        f.marks.note(end - 2_000_000)
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
    """A point newer than the kept steps keeps them; a late one has the steps from it on computed;
    a new series or a statement, all of them."""
    now = int(time.time() * 1000) // STEP * STEP
    # Without the rollups' bookkeeping, which marks a point over a minute late by a statement
    # (computing everything afresh): the test's times do not depend on how fast it runs.
    writer = SampleWriter(store.backend)

    def write(ts_ms: int, value: float, pod: str = "a") -> None:
        writer.write([Sample(to_labels({"__name__": "req_total", "pod": pod}), ts_ms, value)])

    for i in range(120):
        write(now - 1_200_000 + i * STEP, float(i))
    engine = Engine(store.querier)
    assert store.querier.point_marks is not None
    cache = RangeResultCache(store.querier.data_stamp, store.querier.point_marks)
    query = "sum(rate(req_total[1m]))"
    calls: list[tuple[int, int]] = []

    def both(start: int, end: int) -> None:
        def compute(a: int, b: int) -> Matrix:
            calls.append((a, b))
            return engine.range(query, a, b, STEP)

        _same(cache.range(None, query, start, end, STEP, compute), engine.range(query, start, end, STEP))

    both(now - 1_200_000, now)
    write(now + STEP, 500.0)  # the next scrape: every kept step stays
    both(now - 1_190_000, now + STEP)
    assert calls[1:] == [(now + STEP, now + STEP)]
    write(now - 900_000 + 5_000, 1e6)  # late, between two kept steps
    both(now - 1_190_000, now + STEP)
    assert calls[2:] == [(now - 890_000, now + STEP)]
    write(now - 600_000 + 5_000, 1e6, pod="b")  # a new series
    both(now - 1_190_000, now + STEP)
    assert calls[3:] == [(now - 1_190_000, now + STEP)]
    store.backend.execute(f"OPTIMIZE TABLE {store.backend.database}.samples")  # any statement
    both(now - 1_190_000, now + STEP)
    assert calls[4:] == [(now - 1_190_000, now + STEP)]
    assert cache.hits == 2


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
    assert store.querier.point_marks is not None
    cache = RangeResultCache(store.querier.data_stamp, store.querier.point_marks)
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
    for i in range(12):
        _same(f.ask(f.now - 900_000, f.now), _matrix(f.now - 900_000, f.now))
        f.now += slide_ms
        f.marks.note(f.now - (i % 4) * 45_000)  # written since: from the end or up to 135 s before
    assert f.cache.hits == 11


def test_memory_stays_bounded_whatever_is_asked() -> None:
    f = _Fake()
    for i in range(60):
        f.ask(0, (i % 7 + 1) * 20_000 * STEP, text=f"q{i}")
    cache = f.cache
    held = sum(entry.nbytes for entry in cache._entries.values())
    assert held == cache._bytes <= MAX_BYTES
    assert cache._bytes > MAX_BYTES // 2  # the bound was reached, not avoided


def test_long_query_texts_count_against_the_bound() -> None:
    """Each entry's key holds its query's text (up to 128 KiB): many long queries with small
    answers stay within the bound as well."""
    f = _Fake()
    for i in range(1_600):
        f.ask(0, 2 * STEP, text=f"q{i} " + "x" * 65_536)
    cache = f.cache
    assert cache._bytes <= MAX_BYTES
    assert len(cache._entries) < 1_600  # some were dropped to stay within it
    assert sum(entry.nbytes for entry in cache._entries.values()) == cache._bytes


def test_kept_steps_do_not_hold_the_whole_answer() -> None:
    f = _Fake()
    answer = f.ask(0, f.now)
    kept = next(iter(f.cache._entries.values())).parts[0][0]
    assert kept.ts_ms.base is None or kept.ts_ms.base is not answer.series[0].ts_ms.base


def test_answers_kept_while_points_arrive_end_right(store: Store) -> None:
    """Refreshes racing the writer, whose points become readable in two places (the store, then
    the recent points in memory): once the writes end, the next answer is the one computed whole,
    so no step kept from the middle of a write survives."""
    now = int(time.time() * 1000) // STEP * STEP
    engine = Engine(store.querier)
    assert store.querier.point_marks is not None
    cache = RangeResultCache(store.querier.data_stamp, store.querier.point_marks)
    query = "sum by (pod) (rate(req_total[1m]))"
    sample_writer = SampleWriter(store.backend)  # as in the test above: late points stay points

    def _write(_: Store, ts_ms: int, value: float, pod: str = "a") -> None:
        sample_writer.write([Sample(to_labels({"__name__": "req_total", "pod": pod}), ts_ms, value)])

    _write(store, now - 600_000, 0.0)
    _write(store, now - 600_000, 0.0, pod="b")
    done = threading.Event()

    def write() -> None:
        try:
            for i in range(1, 60):
                _write(store, now - 600_000 + i * STEP, float(i))  # the next scrape
                _write(store, now - 600_000 + (i // 2) * STEP + 5_000, float(i), pod="b")  # late, in between
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while True:  # at least once
            finished = done.is_set()
            cache.range(None, query, now - 600_000, now, STEP, lambda a, b: engine.range(query, a, b, STEP))
            if finished:
                break
    finally:
        writer.join()
    cached = cache.range(None, query, now - 600_000, now, STEP, lambda a, b: engine.range(query, a, b, STEP))
    _same(cached, engine.range(query, now - 600_000, now, STEP))


def test_a_refresh_between_the_two_places_a_point_lands_is_not_kept(store: Store) -> None:
    """A write is readable in the store before it is in the recent points in memory, where reads
    of new times look; a refresh in between computes without it. The write is noted again once in
    memory, so the next refresh does not keep what that one computed."""
    now = int(time.time() * 1000) // STEP * STEP
    engine = Engine(store.querier)
    assert store.querier.point_marks is not None
    assert store.backend.recent is not None
    cache = RangeResultCache(store.querier.data_stamp, store.querier.point_marks)
    query = "sum(req_total)"
    writer = SampleWriter(store.backend)

    def write(ts_ms: int, value: float) -> None:
        writer.write([Sample(to_labels({"__name__": "req_total", "pod": "a"}), ts_ms, value)])

    def ask() -> Matrix:
        start = now - 300_000
        return cache.range(None, query, start, now, STEP, lambda a, b: engine.range(query, a, b, STEP))

    for i in range(31):
        write(now - 300_000 + i * STEP, 1.0)
    ask()
    recent = store.backend.recent
    append = recent.append

    def refresh_first(*args: object) -> None:  # a refresh that comes in just before
        ask()
        append(*args)  # type: ignore[arg-type]

    recent.append = refresh_first  # type: ignore[method-assign]
    try:
        write(now - 100_000, 50.0)  # a late point, rewriting one the kept answer read
    finally:
        recent.append = append  # type: ignore[method-assign]
    _same(ask(), engine.range(query, now - 300_000, now, STEP))


def test_kept_answers_only_when_nothing_is_left_to_compute() -> None:
    f = _Fake()
    end = f.now
    assert f.cache.kept(None, "q", end - 900_000, end, STEP, 1 << 20) is None  # nothing kept yet
    f.ask(end - 900_000, end)
    kept = f.cache.kept(None, "q", end - 600_000, end, STEP, 1 << 20)
    assert kept is not None
    _same(kept, _matrix(end - 600_000, end))
    assert f.calls == [(end - 900_000, end)]  # nothing computed for it
    assert f.cache.kept(None, "q", end - 600_000, end + STEP, STEP, 1 << 20) is None  # a new step
    assert f.cache.kept(None, "q", end - 600_000, end, STEP, 1_000) is None  # larger than allowed
    assert f.cache.kept(None, "q", end - 910_000, end, STEP, 1 << 20) is None  # earlier start
    f.marks.note(end)  # a point at the last step: that step is computed again
    assert f.cache.kept(None, "q", end - 600_000, end, STEP, 1 << 20) is None
    assert f.cache.kept(None, "q", end - 600_000, end - STEP, STEP, 1 << 20) is not None
    assert f.cache.misses == 1  # counted by range only


@given(
    asks=st.lists(
        st.tuples(st.integers(0, 100), st.integers(0, 100), st.integers(-1, 120), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_kept_and_range_are_the_computed_answer_whatever_was_written(
    asks: list[tuple[int, int, int, bool]],
) -> None:
    """Windows and writes at random, each step's value counting the points written at or before
    it: whenever ``kept`` answers, and every ``range``, is the answer computed whole then."""
    written: list[int] = []
    marks = WriteMarks(max_marks=4)  # merged often: conservative answers must stay right too

    def truth(a: int, b: int) -> Matrix:
        ts = np.arange(a, b + 1, STEP, dtype=np.int64)
        seen = np.searchsorted(np.sort(np.array(written, np.int64)), ts, "right")
        return Matrix([MatrixSeries({"a": "1"}, ts, (ts + 1e12 * seen).astype(np.float64))])

    cache = RangeResultCache(lambda: 1, marks, lambda text: 15_000 if "sketch" in text else 0)
    base = 10**12
    for a, width, at, sketch in asks:
        start, end, text = base + a * STEP, base + (a + width) * STEP, "sketch" if sketch else "q"
        kept = cache.kept(None, text, start, end, STEP, 1 << 20)
        if kept is not None:
            _same(kept, truth(start, end))
        _same(cache.range(None, text, start, end, STEP, truth), truth(start, end))
        if at >= 0:  # a point between steps, or on one
            written.append(base + at * STEP - (at % 2) * 3_000)
            marks.note(written[-1])
