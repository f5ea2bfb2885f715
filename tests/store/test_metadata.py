"""Metric metadata in the store, on chDB and on a real ClickHouse 18.16: newest per target, per project."""

from __future__ import annotations

import pytest

from model.metadata import FamilyMetadata, MetadataError, MetadataRecord
from store.metadata import MetadataStore
from store.open import Store

T0 = 1_764_000_000_000


def _record(
    metric: str, help_: str, ts_ms: int = T0, project: str = "p1", instance: str = "pod-0"
) -> MetadataRecord:
    return MetadataRecord(
        FamilyMetadata(metric, "counter", help_, ""), project, "svc", instance, "pod-0", ts_ms
    )


def test_newest_row_per_target_wins_and_distinct_entries_per_metric(store: Store) -> None:
    meta = MetadataStore(store.backend)
    meta.write([_record("req_total", "old help", T0), _record("req_total", "new help", T0 + 10_000)])
    meta.write([_record("req_total", "old help", T0)])  # a late resend of the older record
    meta.write([_record("req_total", "other target", T0, instance="pod-1")])
    meta.write([_record("req_total", "new help", T0 + 20_000)])  # the same again: nothing new
    assert meta.read("p1") == [
        FamilyMetadata("req_total", "counter", "new help", ""),
        FamilyMetadata("req_total", "counter", "other target", ""),
    ]


def test_a_project_reads_only_its_own(store: Store) -> None:
    meta = MetadataStore(store.backend)
    meta.write([_record("a_total", "secret of p1"), _record("b_total", "of p2", project="p2")])
    assert [f.metric for f in meta.read("p2")] == ["b_total"]
    assert [f.metric for f in meta.read(None)] == ["a_total", "b_total"]
    assert meta.read("p3") == []
    assert [f.help for f in meta.read(None, "a_total")] == ["secret of p1"]


@pytest.mark.parametrize(
    "record",
    [
        _record("not a name", "x"),
        _record("", "x"),
        _record("x", "h" * 5000),
        MetadataRecord(FamilyMetadata("x", "bogus", "", ""), "p", "", "", "", T0),
        MetadataRecord(FamilyMetadata("x", "gauge", "", ""), "p" * 600, "", "", "", T0),
    ],
)
def test_bad_records_are_refused_before_anything_is_written(
    chdb_store: Store, record: MetadataRecord
) -> None:
    meta = MetadataStore(chdb_store.backend)
    with pytest.raises(MetadataError):
        meta.write([_record("good_total", "fine"), record])
    assert meta.read(None) == []
