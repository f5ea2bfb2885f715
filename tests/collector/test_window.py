"""10 s windows: values land in the window of their time, closed windows drain once, late data adds up."""

from __future__ import annotations

import json

import numpy as np
import pytest

from collector.window import SketchRow, WindowedSketches, rows_from_wire, rows_to_wire
from sketch import ExponentialHistogram, from_columns

TTFT = "infer_service_first_token_cost"
POD = {"service_id": "svc", "group_id": "dep", "source": "pod-0"}
T0 = 1_700_000_000.0  # a multiple of 10 s


def test_values_go_to_the_window_of_their_time() -> None:
    windows = WindowedSketches(width_s=10)
    windows.observe(TTFT, POD, 10.0, T0 + 0.5)
    windows.observe(TTFT, POD, np.array([20.0, 30.0]), T0 + 9.999)
    windows.observe(TTFT, POD, 40.0, T0 + 10.0)
    rows = windows.drain(T0 + 20.0)
    assert [(r.window_start_ms, r.columns.count) for r in rows] == [
        (int(T0 * 1000), 3),
        (int(T0 * 1000) + 10_000, 1),
    ]
    assert all(r.width_s == 10 for r in rows)


def test_drain_returns_only_closed_windows_and_forgets_them() -> None:
    windows = WindowedSketches()
    windows.observe(TTFT, POD, 1.0, T0 + 1)
    windows.observe(TTFT, POD, 2.0, T0 + 11)
    assert [r.window_start_ms for r in windows.drain(T0 + 15)] == [int(T0 * 1000)]
    assert windows.drain(T0 + 15) == []
    assert len(windows) == 1
    assert [r.window_start_ms for r in windows.drain_all()] == [int(T0 * 1000) + 10_000]
    assert len(windows) == 0


def test_grace_keeps_a_window_open_after_its_end() -> None:
    windows = WindowedSketches(grace_s=2.0)
    windows.observe(TTFT, POD, 1.0, T0 + 1)
    assert windows.drain(T0 + 11) == []
    assert len(windows.drain(T0 + 12)) == 1


def test_late_value_gives_a_second_row_that_adds_up() -> None:
    windows = WindowedSketches()
    windows.observe(TTFT, POD, 1.0, T0 + 1)
    first = windows.drain(T0 + 10)
    windows.observe(TTFT, POD, 2.0, T0 + 2)  # its window was already drained
    second = windows.drain(T0 + 20)
    assert [r.window_start_ms for r in first + second] == [int(T0 * 1000)] * 2
    merged = ExponentialHistogram.merged(from_columns(r.columns) for r in first + second)
    assert (merged.count, merged.min, merged.max) == (2, 1.0, 2.0)


def test_series_are_kept_apart_and_labels_canonical() -> None:
    windows = WindowedSketches()
    windows.observe(
        TTFT, {"source": "pod-0", "service_id": "svc", "__name__": "ignored", "role": ""}, 1.0, T0
    )
    windows.observe(TTFT, {"service_id": "svc", "source": "pod-0"}, 2.0, T0)
    windows.observe(TTFT, {"service_id": "svc", "source": "pod-1"}, 3.0, T0)
    windows.observe("infer_service_per_token_cost", {"service_id": "svc", "source": "pod-0"}, 4.0, T0)
    rows = windows.drain(T0 + 10)
    by_key = {(r.metric, r.labels): r.columns.count for r in rows}
    assert by_key == {
        (TTFT, (("service_id", "svc"), ("source", "pod-0"))): 2,
        (TTFT, (("service_id", "svc"), ("source", "pod-1"))): 1,
        ("infer_service_per_token_cost", (("service_id", "svc"), ("source", "pod-0"))): 1,
    }


def test_window_sketch_equals_sketch_of_its_values() -> None:
    rng = np.random.default_rng(2)
    windows = WindowedSketches(buffer_values=100)  # forces several flushes inside the window
    values = rng.lognormal(4.0, 1.0, 1000)
    for chunk in np.array_split(values, 37):
        windows.observe(TTFT, POD, chunk, T0 + 3)
    for v in rng.lognormal(4.0, 1.0, 50):
        windows.observe(TTFT, POD, float(v), T0 + 4)
        values = np.append(values, v)
    (row,) = windows.drain(T0 + 10)
    expected = ExponentialHistogram()
    expected.add_many(values)
    assert from_columns(row.columns).same_as(expected)


def test_non_finite_values_are_counted_not_stored() -> None:
    windows = WindowedSketches()
    windows.observe(TTFT, POD, np.array([1.0, np.nan, np.inf]), T0)
    windows.observe(TTFT, POD, float("nan"), T0)
    (row,) = windows.drain(T0 + 10)
    assert row.columns.count == 1
    assert windows.skipped == 3


def test_window_of_only_bad_values_gives_no_row() -> None:
    windows = WindowedSketches()
    windows.observe(TTFT, POD, float("nan"), T0)
    assert windows.drain(T0 + 10) == []


def test_rows_are_frozen_records() -> None:
    windows = WindowedSketches()
    windows.observe(TTFT, POD, 1.0, T0)
    (row,) = windows.drain(T0 + 10)
    assert isinstance(row, SketchRow)
    with pytest.raises(AttributeError):
        row.metric = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("width_s", "grace_s"), [(0, 0.0), (-10, 0.0), (2.5, 0.0), (10, -1.0)])
def test_rejects_bad_settings(width_s: float, grace_s: float) -> None:
    with pytest.raises(ValueError, match=r"window width|grace"):
        WindowedSketches(width_s=width_s, grace_s=grace_s)  # type: ignore[arg-type]


def test_rows_survive_the_wire() -> None:
    windows = WindowedSketches()
    windows.observe(TTFT, POD, np.array([1.0, 250.0, -3.0, 0.0]), T0)
    windows.observe("infer_service_per_token_cost", POD, 12.5, T0 + 10)
    rows = windows.drain_all()
    wire = json.loads(json.dumps(rows_to_wire(rows)))
    assert rows_from_wire(wire) == rows


@pytest.mark.parametrize(
    "item",
    [
        {"labels": {}, "window_start_ms": 0, "width_s": 10, "sketch": {}},
        {"metric": "m", "labels": [], "window_start_ms": 0, "width_s": 10, "sketch": {}},
        {"metric": "m", "labels": {}, "window_start_ms": 0, "width_s": 10, "sketch": {"scale": 6}},
    ],
    ids=["no-metric", "labels-not-a-map", "sketch-incomplete"],
)
def test_malformed_wire_rows_are_refused(item: dict) -> None:
    with pytest.raises(ValueError, match="malformed"):
        rows_from_wire([item])
