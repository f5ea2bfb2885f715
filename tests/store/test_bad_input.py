"""Bad input has defined behaviour on both backends: dropped and counted by reason, the rest kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from store.admission import TS_MAX_MS, TS_MIN_MS
from store.limits import Limits
from store.open import Store
from store.writes import SampleWriter, partition_runs

NOW_S = 1_700_000_000.0
T0 = int(NOW_S * 1000)
GOOD = {"__name__": "m", "pod": "ok"}


def _writer(store: Store, **limits: object) -> SampleWriter:
    return SampleWriter(store.backend, limits=Limits(**limits), clock=lambda: NOW_S)  # type: ignore[arg-type]


def _points(store: Store, name: str = "m") -> dict[str, list[tuple[int, float]]]:
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, name)], T0 - 10**8, T0 + 10**8)
    return {
        s.labels.get("pod", ""): list(zip(s.ts_ms.tolist(), s.values.tolist(), strict=True)) for s in series
    }


def _s(labels: dict[str, str], ts: int = T0, value: float = 1.0) -> Sample:
    return Sample(to_labels(labels), ts, value)


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        # Undecodable bytes, as surrogateescape keeps them in a str.
        ({"__name__": "m", "pod": "bad\udcff"}, "invalid_utf8"),
        ({"__name__": "m", "pod\udcff": "x"}, "invalid_utf8"),
        ({"__name__": "m", "pod": "x" * 4097}, "label_too_long"),
        ({"__name__": "m", "pod": "x", **{f"l{i}": "v" for i in range(64)}}, "too_many_labels"),
        ({"__name__": "m", "pod": "x", "bad-name": "v"}, "invalid_label"),
        ({"__name__": "1m", "pod": "x"}, "invalid_label"),
    ],
)
def test_bad_labels_drop_that_series_only(store: Store, labels: dict[str, str], reason: str) -> None:
    writer = _writer(store)
    assert writer.write([_s(labels), _s(GOOD)]) == 1
    assert writer.guard.dropped == {reason: 1}
    assert _points(store) == {"ok": [(T0, 1.0)]}


def test_limits_at_the_edge_are_accepted(store: Store) -> None:
    labels = {"__name__": "m:rate5m", "pod": "ü" * 2048, **{f"l{i}": "v" for i in range(63)}}
    writer = _writer(store)
    assert writer.write([_s(labels)]) == 1
    assert not writer.guard.dropped


def test_cardinality_limit_per_metric_keeps_admitted_series(store: Store) -> None:
    writer = _writer(store, max_series_per_metric=3)
    first = [_s({"__name__": "m", "pod": f"p{i}"}) for i in range(5)]
    assert writer.write(first) == 3
    assert writer.guard.dropped == {"series_limit_metric": 2}
    # Admitted series keep flowing; the refused stay refused; another metric is not affected.
    later = [_s({"__name__": "m", "pod": f"p{i}"}, T0 + 1000) for i in range(5)]
    assert writer.write([*later, _s({"__name__": "other", "pod": "p9"})]) == 4
    assert writer.guard.dropped == {"series_limit_metric": 4}
    assert sorted(_points(store)) == ["p0", "p1", "p2"]


def test_cardinality_limit_per_target(store: Store) -> None:
    writer = _writer(store, max_series_per_target=2)
    batch = [_s({"__name__": f"m{i}", "source": "pod-a"}) for i in range(3)]
    batch.append(_s({"__name__": "m0", "source": "pod-b"}))
    assert writer.write(batch) == 3
    assert writer.guard.dropped == {"series_limit_target": 1}


def test_clock_skew_future_samples_dropped(store: Store) -> None:
    writer = _writer(store, max_future_s=600.0, max_age_s=86_400.0)
    batch = [
        _s(GOOD, T0 + 599_000, 1.0),
        _s(GOOD, T0 + 601_000, 2.0),
        _s(GOOD, T0 - 86_401_000, 3.0),
        _s(GOOD, T0, 4.0),
    ]
    assert writer.write(batch) == 2
    assert writer.guard.dropped == {"too_far_in_future": 1, "too_old": 1}
    assert _points(store) == {"ok": [(T0, 4.0), (T0 + 599_000, 1.0)]}


def test_nan_and_inf_are_kept(store: Store) -> None:
    writer = _writer(store)
    assert (
        writer.write([_s(GOOD, T0, math.nan), _s(GOOD, T0 + 1, math.inf), _s(GOOD, T0 + 2, -math.inf)]) == 3
    )
    values = [v for _, v in _points(store)["ok"]]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


def test_out_of_order_timestamps_are_stored_sorted(store: Store) -> None:
    writer = _writer(store)
    writer.write([_s(GOOD, T0 + 2000, 2.0), _s(GOOD, T0, 0.0)])
    writer.write([_s(GOOD, T0 + 1000, 1.0)])
    assert _points(store) == {"ok": [(T0, 0.0), (T0 + 1000, 1.0), (T0 + 2000, 2.0)]}


def test_duplicate_timestamp_in_a_batch_keeps_the_last_value(store: Store) -> None:
    writer = _writer(store)
    assert writer.write([_s(GOOD, T0, 1.0), _s(GOOD, T0 + 1, 5.0), _s(GOOD, T0, 2.0), _s(GOOD, T0, 3.0)]) == 2
    assert writer.guard.dropped == {"duplicate_timestamp": 2}
    assert _points(store) == {"ok": [(T0, 3.0), (T0 + 1, 5.0)]}


def test_identical_duplicate_across_batches_reads_once(store: Store) -> None:
    writer = _writer(store)
    writer.write([_s(GOOD, T0, 1.0)])
    writer.write([_s(GOOD, T0, 1.0), _s(GOOD, T0 + 1, 2.0)])
    assert _points(store) == {"ok": [(T0, 1.0), (T0 + 1, 2.0)]}


def test_a_batch_of_only_bad_samples_writes_nothing_and_does_not_raise(store: Store) -> None:
    writer = _writer(store)
    assert writer.write([_s({"__name__": "m", "pod": "\udcff"})]) == 0
    assert _points(store) == {}


def test_limits_validate() -> None:
    with pytest.raises(ValueError, match="max_labels"):
        Limits(max_labels=0).validate()


@pytest.mark.parametrize("ts", [-1, -86_400_001, TS_MAX_MS + 1, 2**62, 2**63 - 1, -(2**63)])
def test_timestamps_the_tables_cannot_hold_drop_that_sample_only(store: Store, ts: int) -> None:
    """Stamps before 1970 or past 2105 (DateTime partitions, Date days) never fail the block."""
    writer = _writer(store, max_future_s=None)
    edge = [_s(GOOD, TS_MIN_MS, 1.0), _s({"__name__": "m", "pod": "late"}, TS_MAX_MS, 2.0)]
    assert writer.write([_s(GOOD, T0, 0.0), _s({"__name__": "m", "pod": "bad"}, ts), *edge]) == 3
    assert writer.guard.dropped == {"timestamp_out_of_range": 1}
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, "m")], TS_MIN_MS, TS_MAX_MS)
    stored = {s.labels["pod"]: s.ts_ms.tolist() for s in series}
    assert stored == {"ok": [TS_MIN_MS, T0], "late": [TS_MAX_MS]}


def test_a_batch_over_many_partitions_is_split_not_refused(store: Store) -> None:
    """Samples over 250 days and series rows over 130 months: more partitions than chDB's
    ``max_partitions_per_insert_block`` (100) allows one insert."""
    writer = _writer(store, max_future_s=None)
    day_ms = 86_400_000
    days = [_s({"__name__": "m", "pod": f"p{d % 7}"}, T0 - d * day_ms, float(d)) for d in range(250)]
    months = [_s({"__name__": "m", "pod": "monthly"}, T0 - k * 31 * day_ms, float(k)) for k in range(130)]
    assert writer.write(days + months) == 250 + 130
    assert not writer.guard.dropped
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, "m")], 0, T0 + 1)
    counts = {s.labels["pod"]: len(s.ts_ms) for s in series}
    assert counts == {**{f"p{i}": len(range(i, 250, 7)) for i in range(7)}, "monthly": 130}


def test_partition_runs_cover_every_row_once_in_order() -> None:
    keys = np.array([5, 0, 300, 1, 299, 100, 5, 0])
    runs = partition_runs(keys, 100)
    assert sorted(np.concatenate(runs).tolist()) == list(range(len(keys)))
    for run in runs:
        assert run.tolist() == sorted(run.tolist())  # the rows' order kept
        assert keys[run].max() - keys[run].min() < 100
    assert partition_runs(np.array([3, 3, 50]), 100) == [None]
