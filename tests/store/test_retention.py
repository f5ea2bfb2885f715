"""Retention drops whole partitions past the kind's days, on both backends; what is newer stays."""

from __future__ import annotations

import datetime as dt

import pytest

from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from store.open import Store
from store.retention import Retention, partition_last_day

DAY_MS = 86_400_000
NOW = 1_700_000_000_000  # 2023-11-14 22:13 UTC


def _write_days(store: Store, days: range) -> None:
    labels = to_labels({"__name__": "m", "pod": "a"})
    store.writer.write([Sample(labels, NOW - d * DAY_MS, float(d)) for d in days])


def _days_left(store: Store) -> list[int]:
    (series,) = store.querier.select([Matcher("__name__", MatchOp.EQ, "m")], NOW - 100 * DAY_MS, NOW)
    return sorted(int((NOW - t) // DAY_MS) for t in series.ts_ms.tolist())


def test_default_keeps_15_days_and_drops_older_partitions(store: Store) -> None:
    _write_days(store, range(20))
    dropped = Retention().enforce(store.backend, NOW)
    assert _days_left(store) == list(range(15))
    assert sorted(d for d in dropped if d.startswith("samples/")) == [
        f"samples/{(dt.date(2023, 11, 14) - dt.timedelta(days=d)).isoformat()}" for d in range(19, 14, -1)
    ]
    assert Retention().enforce(store.backend, NOW) == []  # nothing more to do


def test_configurable_days(store: Store) -> None:
    _write_days(store, range(5))
    Retention(metrics_days=2).enforce(store.backend, NOW)
    assert _days_left(store) == [0, 1]


def test_series_month_partition_goes_only_when_whole_month_expired(store: Store) -> None:
    _write_days(store, range(40))  # 2023-10-06 … 2023-11-14
    dropped = Retention(metrics_days=15).enforce(store.backend, NOW)
    assert "series/202310" not in dropped  # 15 days back from 2023-11-14 is 2023-10-31: still kept
    dropped = Retention(metrics_days=14).enforce(store.backend, NOW)
    assert "series/202310" in dropped


@pytest.mark.parametrize(
    ("partition", "expected"),
    [
        ("2023-11-14", (dt.date(2023, 11, 14), "'2023-11-14'")),
        ("20231114", (dt.date(2023, 11, 14), "20231114")),
        ("202302", (dt.date(2023, 2, 28), "202302")),
        ("('pod', 20231114)", None),
        ("2023-11-14'; DROP TABLE x; --", None),
    ],
)
def test_partition_last_day(partition: str, expected: tuple[dt.date, str] | None) -> None:
    assert partition_last_day(partition) == expected


def test_retention_validates() -> None:
    with pytest.raises(ValueError, match="metrics_days"):
        Retention(metrics_days=0).validate()
