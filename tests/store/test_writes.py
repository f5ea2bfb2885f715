"""SampleWriter: what it inserts (sorted, dictionary-encoded, deduplicated), its label-set cache, the
columnar entry point, and the ``on_stored`` hook; on both backends where the store is involved."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from store.backend import StoreUnavailableError
from store.limits import Limits
from store.open import Store, open_store
from store.writes import SampleWriter, fingerprint

NOW_S = 1_700_000_000.0
T0 = int(NOW_S * 1000)
DAY = 86_400_000


def _s(name: str, ts: int, value: float = 1.0, **labels: str) -> Sample:
    return Sample(to_labels({"__name__": name, **labels}), ts, value)


class Recorder:
    """A backend that keeps what it is given; ``fail`` makes every insert raise."""

    database = "db"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.inserts: list[tuple[str, pa.Table]] = []

    def insert(self, table: str, rows: pa.Table) -> None:
        if self.fail:
            raise StoreUnavailableError("down")
        self.inserts.append((table, rows))

    def rows(self, table: str) -> list[dict[str, object]]:
        return [row for name, rows in self.inserts if name == table for row in rows.to_pylist()]


def _writer(backend: object, **kwargs: object) -> SampleWriter:
    return SampleWriter(backend, clock=lambda: NOW_S, **kwargs)  # type: ignore[arg-type]


def _points(store: Store, name: str) -> dict[str, list[tuple[int, float]]]:
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, name)], T0 - 10 * DAY, T0 + 10 * DAY)
    return {
        s.labels.get("pod", ""): list(zip(s.ts_ms.tolist(), s.values.tolist(), strict=True)) for s in series
    }


# -- on_stored ------------------------------------------------------------------------------------


def test_on_stored_gets_the_bounds_of_the_samples_stored() -> None:
    calls: list[tuple[int, int]] = []
    writer = _writer(Recorder(), on_stored=lambda low, high: calls.append((low, high)))
    batch = [
        _s("m", T0 - 5000, pod="a"),
        _s("m", T0 + 7000, pod="b"),
        _s("m", T0 - 900_000, pod="bad\udcff"),  # dropped: not counted in the bounds
        _s("m", T0 + 10 * 3_600_000, pod="a"),  # too far in the future: dropped too
        _s("m", T0, pod="a"),
    ]
    assert writer.write(batch) == 3
    assert calls == [(T0 - 5000, T0 + 7000)]
    assert writer.write([_s("m", T0 + 1, pod="c")]) == 1
    assert calls[-1] == (T0 + 1, T0 + 1)
    assert all(isinstance(bound, int) for bound in calls[-1])


def test_on_stored_not_called_when_nothing_is_stored() -> None:
    calls: list[tuple[int, int]] = []
    writer = _writer(Recorder(), on_stored=lambda low, high: calls.append((low, high)))
    assert writer.write([_s("m", T0, pod="\udcff")]) == 0
    assert writer.write([]) == 0
    assert writer.write_columns([], [], np.zeros(0, np.int64), np.zeros(0)) == 0
    assert calls == []


def test_on_stored_not_called_when_the_insert_raises() -> None:
    calls: list[tuple[int, int]] = []
    backend = Recorder(fail=True)
    writer = _writer(backend, on_stored=lambda low, high: calls.append((low, high)))
    with pytest.raises(StoreUnavailableError):
        writer.write([_s("m", T0, pod="a")])
    assert calls == []
    # The retry writes the series row again (it was not stored) and then reports the bounds.
    backend.fail = False
    assert writer.write([_s("m", T0, pod="a")]) == 1
    assert calls == [(T0, T0)]
    assert len(backend.rows("series")) == 1


def test_on_stored_on_a_real_store(store: Store) -> None:
    calls: list[tuple[int, int]] = []
    writer = SampleWriter(store.backend, on_stored=lambda low, high: calls.append((low, high)))
    writer.write([_s("m", T0 + 2, pod="a"), _s("m", T0 + 1, pod="b")])
    assert calls == [(T0 + 1, T0 + 2)]
    assert _points(store, "m") == {"a": [(T0 + 2, 1.0)], "b": [(T0 + 1, 1.0)]}


# -- what is inserted -----------------------------------------------------------------------------


def test_samples_arrive_in_table_key_order_with_a_dictionary_name_column() -> None:
    backend = Recorder()
    writer = _writer(backend)
    rng = random.Random(1)
    batch = [
        _s(name, T0 + 1000 * rng.randrange(50), rng.random(), pod=str(pod))
        for _ in range(400)
        for name in ["zeta", "alpha", "mid"]
        for pod in [rng.randrange(7)]
    ]
    written = writer.write(batch)
    (rows,) = [r for t, r in backend.inserts if t == "samples"]
    assert rows.num_rows == written
    assert pa.types.is_dictionary(rows.schema.field("metric_name").type)
    keys = list(
        zip(*(rows.column(c).to_pylist() for c in ("metric_name", "fingerprint", "ts_ms")), strict=True)
    )
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)  # one row per (series, timestamp)
    # The last value of each (series, timestamp) in batch order is the one kept.
    last = {(s.labels, s.ts_ms): s.value for s in batch}
    expected = sorted((dict(k)["__name__"], fingerprint(k), t, v) for (k, t), v in last.items())
    assert sorted(zip(*(rows.column(c).to_pylist() for c in rows.column_names), strict=True)) == expected
    assert writer.guard.dropped["duplicate_timestamp"] == len(batch) - len(last)


def test_series_rows_once_per_series_and_day() -> None:
    backend = Recorder()
    writer = _writer(backend)
    writer.write([_s("m", T0, pod="a"), _s("m", T0 - DAY, pod="a"), _s("m", T0, pod="b")])
    writer.write([_s("m", T0 + 1, pod="a"), _s("m", T0 - DAY + 1, pod="a"), _s("m", T0 + 1, pod="b")])
    writer.write([_s("m", T0 + 2, pod="c"), _s("m", T0 + 2, pod="a")])
    rows = [(row["label_values"][0], row["day"].toordinal()) for row in backend.rows("series")]
    day = (T0 // DAY) + 719163  # days since 1970-01-01 → date.toordinal()
    assert sorted(rows) == [("a", day - 1), ("a", day), ("b", day), ("c", day)]


def test_a_small_cache_evicts_without_mixing_series_up(store: Store) -> None:
    writer = SampleWriter(store.backend, cache_size=2, clock=lambda: NOW_S)
    pods = [f"p{i}" for i in range(5)]
    for step in range(3):  # each batch holds more series than the cache
        writer.write([_s("m", T0 + step * 1000, float(i), pod=pod) for i, pod in enumerate(pods)])
        assert len(writer._slots) <= 2
    writer.write([_s("n", T0, 9.0, pod="p0")])  # a new metric name after evictions
    assert _points(store, "m") == {
        pod: [(T0 + step * 1000, float(i)) for step in range(3)] for i, pod in enumerate(pods)
    }
    assert _points(store, "n") == {"p0": [(T0, 9.0)]}


def test_write_columns_is_write_by_series() -> None:
    by_rows, by_columns = Recorder(), Recorder()
    a, b = to_labels({"__name__": "m", "pod": "a"}), to_labels({"__name__": "m", "pod": "b\udcff"})
    samples = [Sample(a, T0, 1.0), Sample(a, T0 + 1, 2.0), Sample(b, T0, 3.0), Sample(a, T0, 4.0)]
    rows_writer, columns_writer = _writer(by_rows), _writer(by_columns)
    assert rows_writer.write(samples) == 2
    ts = np.array([s.ts_ms for s in samples])
    values = np.array([s.value for s in samples])
    assert columns_writer.write_columns([a, b, a], [2, 1, 1], ts, values) == 2
    for table in ("samples", "series"):
        assert by_rows.rows(table) == by_columns.rows(table)
    assert rows_writer.guard.dropped == columns_writer.guard.dropped
    with pytest.raises(ValueError, match="line up"):
        columns_writer.write_columns([a], [2], ts[:1], values[:1])


def test_write_indexed_is_write() -> None:
    by_rows, by_index = Recorder(), Recorder()
    a, b = to_labels({"__name__": "m", "pod": "a"}), to_labels({"__name__": "m", "pod": "b\udcff"})
    samples = [Sample(a, T0, 1.0), Sample(b, T0, 3.0), Sample(a, T0 + 1, 2.0), Sample(a, T0, 4.0)]
    rows_writer, index_writer = _writer(by_rows), _writer(by_index)
    assert rows_writer.write(samples) == 2
    ts = np.array([s.ts_ms for s in samples])
    values = np.array([s.value for s in samples])
    # a label set may appear twice in the list (two requests joined into one block)
    assert index_writer.write_indexed([a, b, a], np.array([0, 1, 2, 0]), ts, values) == 2
    for table in ("samples", "series"):
        assert by_rows.rows(table) == by_index.rows(table)
    assert rows_writer.guard.dropped == index_writer.guard.dropped
    with pytest.raises(ValueError, match="line up"):
        index_writer.write_indexed([a], np.array([0, 0]), ts[:1], values[:1])
    with pytest.raises(ValueError, match="out of range"):
        index_writer.write_indexed([a], np.array([1]), ts[:1], values[:1])


def test_fingerprint_is_stable() -> None:
    """Stored fingerprints must not change between releases: blake2b-64 over name, 0xff, value, 0xfe."""
    assert fingerprint(()) == 0xB4B2797457A0A6E4
    labels = to_labels({"__name__": "up", "job": "a\udcff", "x": "é"})
    data = b"__name__\xffup\xfejob\xffa\xed\xb3\xbf\xfex\xff\xc3\xa9\xfe"
    assert fingerprint(labels) == int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def test_many_series_in_one_batch_sort_past_16_bits() -> None:
    backend = Recorder()
    writer = _writer(backend, limits=Limits(max_series_per_metric=None, max_series_per_target=None))
    batch = [_s("m", T0 + (i % 3), float(i), pod=str(i)) for i in range(70_000)][::-1]
    assert writer.write(batch) == 70_000
    rows = backend.rows("samples")
    keys = [(r["fingerprint"], r["ts_ms"]) for r in rows]
    assert keys == sorted(keys)


def test_label_sets_are_checked_once_and_remembered_as_bad() -> None:
    writer = _writer(Recorder())
    bad = [_s("m", T0 + i, pod="x" * 5000) for i in range(3)]
    assert writer.write(bad) == 0
    assert writer.write(bad) == 0
    assert writer.guard.dropped == {"label_too_long": 6}


def test_chdb_without_streaming_inserts_uses_the_python_table_function(tmp_path: Path) -> None:
    store = open_store(f"chdb://{tmp_path / 'data'}")

    class OldSession:  # chDB before send_insert: query() and close() only
        def __init__(self, session: object) -> None:
            self.query = session.query  # type: ignore[attr-defined]
            self.close = session.close  # type: ignore[attr-defined]

    store.backend._session = OldSession(store.backend._session)  # type: ignore[attr-defined]
    try:
        store.writer.write([_s("m", T0, 1.5, pod="a"), _s("m", T0 + 1, 2.5, pod="a")])
        assert _points(store, "m") == {"a": [(T0, 1.5), (T0 + 1, 2.5)]}
    finally:
        store.close()


def test_drops_are_counted_once_when_a_failed_batch_is_sent_again() -> None:
    backend = Recorder(fail=True)
    writer = _writer(backend)
    batch = [_s("m", T0, pod="a"), _s("m", T0, 2.0, pod="a"), _s("m", -5, pod="b")]
    with pytest.raises(StoreUnavailableError):
        writer.write(batch)
    assert not writer.guard.dropped  # nothing settled yet
    backend.fail = False
    assert writer.write(batch) == 1
    assert writer.guard.dropped == {"duplicate_timestamp": 1, "timestamp_out_of_range": 1}


def test_each_insert_stays_within_the_partition_limit() -> None:
    """Days of samples and months of series rows are cut into runs of the table's partitions."""
    backend = Recorder()
    writer = _writer(backend, max_partitions_per_insert=10)
    batch = [_s("m", T0 - d * DAY, float(d), pod=f"p{d % 3}") for d in range(95)]
    batch += [_s("m", T0 - k * 31 * DAY, pod="monthly") for k in range(25)]
    assert writer.write(batch) == 95 + 25
    samples = [rows for table, rows in backend.inserts if table == "samples"]
    series = [rows for table, rows in backend.inserts if table == "series"]
    assert len(samples) > 1
    assert len(series) > 1
    for rows in samples:  # a spare partition for a server whose days are not UTC days
        days = np.asarray(rows.column("ts_ms")) // DAY
        assert days.max() - days.min() < 9
        assert rows.to_pylist() == sorted(rows.to_pylist(), key=lambda r: (r["fingerprint"], r["ts_ms"]))
    for rows in series:
        months = {(d.year, d.month) for d in rows.column("day").to_pylist()}
        assert len(months) <= 10
    assert sum(r.num_rows for r in samples) == 120
