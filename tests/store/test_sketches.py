"""The sketches table, on chDB and ClickHouse 18.16: sumMap merges equal the Python merge."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.window import SketchRow, WindowedSketches, with_row_ids
from sketch import ExponentialHistogram, SketchColumns, from_columns, to_columns
from store.open import Store
from store.sketches import MergedSketch, SketchReader, SketchWriter

TTFT = "infer_service_first_token_cost"
T0_S = 1_700_002_800  # a whole hour, so every period (1m … 1h) starts at T0_S
PODS = [
    ("svc-a", "dep-1", "pod-0"),
    ("svc-a", "dep-1", "pod-1"),
    ("svc-a", "dep-2", "pod-2"),
    ("svc-b", "dep-3", "pod-3"),
]


def _load(store: Store, minutes: int = 20) -> dict[tuple[str, str, str], list[tuple[float, np.ndarray]]]:
    """Windows of every pod over ``minutes``, written through the collector's windows; values kept."""
    rng = np.random.default_rng(4)
    windows = WindowedSketches()
    kept: dict[tuple[str, str, str], list[tuple[float, np.ndarray]]] = {pod: [] for pod in PODS}
    for second in range(0, minutes * 60, 5):
        for pod in PODS:
            service_id, group_id, source = pod
            values = rng.lognormal(4.0 + 0.3 * PODS.index(pod), 1.0, 3)
            labels = {"service_id": service_id, "group_id": group_id, "source": source, "project_id": "p"}
            windows.observe(TTFT, labels, values, T0_S + second)
            kept[pod].append((T0_S + second, values))
    SketchWriter(store.backend).write(windows.drain_all())
    return kept


def _expected(kept, pods, start_s: float, end_s: float) -> np.ndarray:
    return np.concatenate([v for pod in pods for ts, v in kept[pod] if start_s <= ts < end_s])


def _sketch(row: MergedSketch) -> ExponentialHistogram:
    fields = {name: getattr(row, name) for name in SketchColumns.__dataclass_fields__}
    return from_columns(SketchColumns(**fields))


@pytest.mark.parametrize(
    ("filters", "pods"),
    [
        ({"service_id": "svc-a"}, PODS[:3]),
        ({"service_id": "svc-a", "group_id": "dep-1"}, PODS[:2]),
        ({"source": "pod-2"}, PODS[2:3]),
        ({}, PODS),
        ({"project_id": "p", "service_id": "svc-b"}, PODS[3:]),
    ],
    ids=["service", "deployment", "pod", "all", "tenant"],
)
def test_merge_in_clickhouse_equals_one_sketch_of_the_values(store: Store, filters, pods) -> None:
    kept = _load(store)
    reader = SketchReader(store.backend)
    rows = reader.merged(TTFT, filters, T0_S * 1000, (T0_S + 1200) * 1000, 300_000)
    assert [r.period_start_ms for r in rows] == [(T0_S + 300 * i) * 1000 for i in range(4)]
    for row in rows:
        start_s = row.period_start_ms / 1000
        expected = ExponentialHistogram()
        expected.add_many(_expected(kept, pods, start_s, start_s + 300))
        assert _sketch(row).same_as(expected)


@pytest.mark.parametrize("period_s", [60, 300, 900, 3600])
def test_periods_cover_every_window_once(store: Store, period_s: int) -> None:
    kept = _load(store)
    rows = SketchReader(store.backend).merged(TTFT, {}, T0_S * 1000, (T0_S + 1200) * 1000, period_s * 1000)
    assert len(rows) == -(-1200 // period_s)
    assert sum(r.count for r in rows) == _expected(kept, PODS, T0_S, T0_S + 1200).size


def test_quantiles_from_merged_rows_are_within_the_bound(store: Store) -> None:
    kept = _load(store)
    (row,) = SketchReader(store.backend).merged(TTFT, {}, T0_S * 1000, (T0_S + 1200) * 1000, 3_600_000)
    values = _expected(kept, PODS, T0_S, T0_S + 1200)
    qs = [0.5, 0.9, 0.99, 0.999]
    exact = np.quantile(values, qs, method="inverted_cdf")
    assert np.all(np.abs(_sketch(row).quantiles(qs) - exact) <= 0.01 * exact)


def test_range_bounds_select_windows_by_start(store: Store) -> None:
    kept = _load(store)
    start_s, end_s = T0_S + 65, T0_S + 125  # windows starting at 70 … 120 s
    rows = SketchReader(store.backend).merged(TTFT, {}, start_s * 1000, end_s * 1000, 60_000)
    assert sum(r.count for r in rows) == _expected(kept, PODS, T0_S + 70, T0_S + 130).size


def test_two_rows_of_one_window_add_up(store: Store) -> None:
    windows = WindowedSketches()
    labels = {"service_id": "s", "source": "p"}
    windows.observe(TTFT, labels, np.array([1.0, 2.0]), T0_S)
    writer = SketchWriter(store.backend)
    writer.write(windows.drain(T0_S + 10))
    windows.observe(TTFT, labels, np.array([3.0]), T0_S + 1)  # late: the same window again
    writer.write(windows.drain(T0_S + 10))
    (row,) = SketchReader(store.backend).merged(
        TTFT, {"service_id": "s"}, T0_S * 1000, (T0_S + 60) * 1000, 60_000
    )
    assert (row.count, row.min, row.max, row.sum) == (3, 1.0, 3.0, 6.0)


def test_negative_and_zero_values_survive_the_round_trip(store: Store) -> None:
    windows = WindowedSketches()
    windows.observe("delta", {"service_id": "s"}, np.array([-5.0, -0.5, 0.0, 0.0, 2.0]), T0_S)
    SketchWriter(store.backend).write(windows.drain_all())
    (row,) = SketchReader(store.backend).merged("delta", {}, T0_S * 1000, (T0_S + 60) * 1000, 60_000)
    expected = ExponentialHistogram()
    expected.add_many(np.array([-5.0, -0.5, 0.0, 0.0, 2.0]))
    assert _sketch(row).same_as(expected)


def test_extra_labels_are_kept_beside_the_identity_columns(store: Store) -> None:
    row = SketchRow(TTFT, (("model", "m"), ("service_id", "s")), T0_S * 1000, 10, _columns_of([1.0]))
    SketchWriter(store.backend).write([row])
    stored = store.backend.query(
        f"SELECT service_id, source, label_names, label_values FROM {store.backend.database}.sketches"
    ).to_pylist()
    assert stored == [{"service_id": "s", "source": "", "label_names": ["model"], "label_values": ["m"]}]


def test_nothing_in_range_reads_as_no_periods(store: Store) -> None:
    assert SketchReader(store.backend).merged(TTFT, {}, 0, 60_000, 60_000) == []
    assert SketchWriter(store.backend).write([]) == 0


@pytest.mark.parametrize(
    ("filters", "span_ms", "period_ms", "message"),
    [
        ({"code": "200"}, 60_000, 60_000, "cannot filter"),
        ({}, 16 * 86_400_000, 60_000, "15 days"),
        ({}, 60_000, 0, "period"),
    ],
)
def test_reader_refuses_bad_requests(store: Store, filters, span_ms, period_ms, message) -> None:
    with pytest.raises(ValueError, match=message):
        SketchReader(store.backend).merged(TTFT, filters, 0, span_ms, period_ms)


def _columns_of(values: list[float]) -> SketchColumns:
    h = ExponentialHistogram()
    h.add_many(np.asarray(values))
    return to_columns(h)


# -- exactly once: a row sent again (a retry, a replayed buffer) is read once --------------------------


def _windows_rows(seed: int = 5) -> list[SketchRow]:
    """Rows of two pods over two minutes, each with its row id (as a sidecar's buffer gives them)."""
    rng = np.random.default_rng(seed)
    windows = WindowedSketches()
    for second in range(0, 120, 3):
        for pod in ("pod-0", "pod-1"):
            labels = {"service_id": "svc", "source": pod, "project_id": "p"}
            windows.observe(TTFT, labels, rng.lognormal(4.0, 1.0, 4), T0_S + second)
    return with_row_ids(windows.drain_all())


def _read_all(store: Store, period_s: int = 60) -> list[MergedSketch]:
    return SketchReader(store.backend).merged(TTFT, {}, T0_S * 1000, (T0_S + 120) * 1000, period_s * 1000)


def _same(a: list[MergedSketch], b: list[MergedSketch]) -> bool:
    return len(a) == len(b) and all(
        x.period_start_ms == y.period_start_ms and _sketch(x).same_as(_sketch(y))
        for x, y in zip(a, b, strict=True)
    )


def test_a_row_inserted_twice_is_read_once(store: Store) -> None:
    rows = _windows_rows()
    writer = SketchWriter(store.backend)
    writer.write(rows)
    once = _read_all(store)
    assert sum(m.count for m in once) == 2 * 40 * 4  # two pods, a value batch every 3 s, four values
    writer.write(rows[: len(rows) // 2])  # a retry of a batch whose answer was lost
    writer.write(rows)  # a replay of the whole buffer after a restart
    assert _same(_read_all(store), once)
    stored = store.backend.query(f"SELECT count() AS n FROM {store.backend.database}.sketches")
    assert stored.column(0)[0].as_py() == 2 * len(rows) + len(rows) // 2  # stored thrice, read once


def test_rows_without_ids_each_get_their_own(store: Store) -> None:
    row = SketchRow(TTFT, (("service_id", "s"),), T0_S * 1000, 10, _columns_of([1.0]))
    SketchWriter(store.backend).write([row, row])  # two late rows alike: both real, both counted
    (merged,) = SketchReader(store.backend).merged(TTFT, {}, T0_S * 1000, (T0_S + 60) * 1000, 60_000)
    assert merged.count == 2


def test_another_projects_row_id_removes_nothing(store: Store) -> None:
    mine = SketchRow(TTFT, (("project_id", "a"), ("service_id", "s")), T0_S * 1000, 10, _columns_of([1.0]), 7)
    theirs = SketchRow(
        TTFT, (("project_id", "b"), ("service_id", "s")), T0_S * 1000, 10, _columns_of([2.0]), 7
    )
    SketchWriter(store.backend).write([mine, theirs])
    reader = SketchReader(store.backend)
    for project, value in (("a", 1.0), ("b", 2.0)):
        (merged,) = reader.merged(TTFT, {"project_id": project}, T0_S * 1000, (T0_S + 60) * 1000, 60_000)
        assert (merged.count, merged.sum) == (1, value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sends=st.lists(st.lists(st.integers(0, 7), max_size=8), min_size=1, max_size=5))
def test_any_pattern_of_resends_reads_as_one_delivery(store: Store, sends: list[list[int]]) -> None:
    """Whatever subsets of the rows are sent, in any order and how often, each read counts each row
    once: the rows sent at least once."""
    store.backend.execute(f"TRUNCATE TABLE {store.backend.database}.sketches")
    rows = [
        SketchRow(TTFT, (("service_id", "s"), ("source", f"p{i % 2}")), T0_S * 1000 + 10_000 * (i % 3), 10,
                  _columns_of([float(i + 1)]), 1000 + i)
        for i in range(8)
    ]  # fmt: skip
    writer = SketchWriter(store.backend)
    for send in sends:
        writer.write([rows[i] for i in send])
    delivered = sorted({i for send in sends for i in send})
    merged = SketchReader(store.backend).merged(TTFT, {}, T0_S * 1000, (T0_S + 60) * 1000, 60_000)
    assert sum(m.count for m in merged) == len(delivered)
    assert sum(m.sum for m in merged) == sum(float(i + 1) for i in delivered)
