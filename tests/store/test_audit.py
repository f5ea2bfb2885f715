"""The audit trail in the real store: chained appends, literal search, and each tampering named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.audit import MASK, Trace, TraceError, TraceUser, trace_from_json
from store.audit import AuditLog, TraceQuery, _table
from store.audit_chain import Tampering, content_hash
from store.open import Store

T0 = 1_764_000_000_000
NASTY = ["o'x", 'a"b', "back\\slash", "100%", "a_b", ".*", "'; DROP TABLE audit_traces; --", "{q:String}"]


def _trace(i: int, **extra: object) -> Trace:
    fields = {
        "trace_name": ["CreateDeployment", "ScaleDeployment", "DeleteServiceV2Pod"][i % 3],
        "resource_type": "serviceV2",
        "time_ms": T0 + i * 1000,
        "project_id": "proj-a",
        "resource_id": f"svc-{i % 4}",
        "resource_name": f"service {i}",
        "user": TraceUser("u1", f"user{i % 2}", "d1", "domain"),
        "source_ip": f"10.0.0.{i % 5}",
        "message": f"operation {i}",
    }
    fields.update(extra)
    return Trace(**fields)  # type: ignore[arg-type]


@pytest.fixture
def audit(chdb_store: Store) -> AuditLog:
    log = AuditLog(chdb_store.backend)
    log.append([_trace(i) for i in range(30)], now_ms=T0 + 60_000)
    return log


def _first_break(log: AuditLog) -> Tampering:
    verdict = log.verify()
    assert not verdict.intact
    return verdict.problems[0]


def _mutate(store: Store, sql: str) -> None:
    store.backend.execute(f"{sql} SETTINGS mutations_sync = 1")


def _rows(store: Store, where: str) -> list[dict]:
    return store.backend.query(
        f"SELECT * FROM infersight.audit_traces WHERE {where} ORDER BY seq"
    ).to_pylist()


def test_clean_chain_verifies(audit: AuditLog) -> None:
    verdict = audit.verify()
    assert (verdict.intact, verdict.checked, verdict.problems) == (True, 30, ())
    assert not verdict.digests_enabled


def test_chain_continues_across_restarts(chdb_store: Store, audit: AuditLog) -> None:
    again = AuditLog(chdb_store.backend)
    assert again.append([_trace(99)], now_ms=T0 + 120_000) == [31]
    verdict = again.verify()
    assert (verdict.intact, verdict.checked) == (True, 31)


def test_search_filters_newest_first(audit: AuditLog) -> None:
    traces, cursor = audit.search(TraceQuery(filters=(("trace_name", "ScaleDeployment"),), limit=100))
    assert [t["message"] for t in traces] == [f"operation {i}" for i in range(28, -1, -3)]
    assert cursor is None
    traces, _ = audit.search(
        TraceQuery(filters=(("user_name", "user1"), ("source_ip", "10.0.0.3")), limit=100)
    )
    assert {t["message"] for t in traces} == {"operation 3", "operation 13", "operation 23"}


def test_pagination_is_stable_and_complete(audit: AuditLog) -> None:
    seen, cursor = [], None
    while True:
        page, cursor = audit.search(TraceQuery(limit=7, cursor=cursor))
        seen += [t["trace_id"] for t in page]
        if cursor is None:
            break
    everything, _ = audit.search(TraceQuery(limit=1000))
    assert seen == [t["trace_id"] for t in everything]
    assert len(seen) == 30


@pytest.mark.parametrize("nasty", NASTY)
def test_every_search_field_matches_literally(chdb_store: Store, nasty: str) -> None:
    log = AuditLog(chdb_store.backend)
    log.append(
        [
            _trace(0, resource_name=nasty, message=f"x{nasty}y", source_ip=nasty, user=TraceUser(name=nasty)),
            _trace(1, resource_name="plain", message="plain", source_ip="1.2.3.4"),
        ]
    )
    for field in ("resource_name", "source_ip", "user_name"):
        traces, _ = log.search(TraceQuery(filters=((field, nasty),), limit=10))
        assert [t["resource_name"] for t in traces] == [nasty], field
    traces, _ = log.search(TraceQuery(text=nasty, limit=10))
    assert [t["resource_name"] for t in traces] == [nasty]


def test_unknown_filter_is_refused(audit: AuditLog) -> None:
    with pytest.raises(ValueError, match="not a searchable field"):
        audit.search(TraceQuery(filters=(("hash", "x"),)))


def test_changed_record_is_named(chdb_store: Store, audit: AuditLog) -> None:
    _mutate(
        chdb_store, "ALTER TABLE infersight.audit_traces UPDATE message = 'nothing happened' WHERE seq = 17"
    )
    broken = _first_break(audit)
    assert (broken.kind, broken.seq) == ("changed", 17)


def test_removed_record_is_named(chdb_store: Store, audit: AuditLog) -> None:
    _mutate(chdb_store, "ALTER TABLE infersight.audit_traces DELETE WHERE seq = 12")
    broken = _first_break(audit)
    assert (broken.kind, broken.seq) == ("removed", 13)


@pytest.mark.parametrize("salt", range(6))
def test_inserted_record_is_named(chdb_store: Store, audit: AuditLog, salt: int) -> None:
    # A forged record, hashed correctly and linked to record 20, placed at position 21 (the salt
    # varies its hash, so it sorts before or after the genuine record 21).
    (row20,) = _rows(chdb_store, "seq = 20")
    forged = dict(row20, trace_id="forged", message=f"forged {salt}", prev_hash=row20["hash"], seq=21)
    forged["hash"] = content_hash(forged["prev_hash"], forged)
    chdb_store.backend.insert("audit_traces", _table([forged]))
    broken = _first_break(audit)
    assert broken.kind == "inserted"
    assert (broken.seq, broken.trace_id) == (21, "forged"), broken


def test_reordered_records_are_named(chdb_store: Store, audit: AuditLog) -> None:
    rows = _rows(chdb_store, "seq IN (5, 6)")
    _mutate(chdb_store, "ALTER TABLE infersight.audit_traces DELETE WHERE seq IN (5, 6)")
    rows[0]["seq"], rows[1]["seq"] = 6, 5
    chdb_store.backend.insert("audit_traces", _table(rows))
    broken = _first_break(audit)
    assert (broken.kind, broken.seq) == ("reordered", 5)


def test_ingested_trace_is_validated_and_masked() -> None:
    trace = trace_from_json(
        {
            "trace_name": "CreateApiKeyV2",
            "resource_type": "apikeyV2",
            "time": T0,
            "trace_rating": "normal",
            "request": {"name": "k1", "api_key": "sk-123", "nested": {"password": "p"}},
        }
    )
    request = json.loads(trace.request)
    assert request["api_key"] == MASK
    assert request["nested"]["password"] == MASK
    assert request["name"] == "k1"
    for bad, field in (
        ({"resource_type": "x", "time": T0}, "trace_name"),
        ({"trace_name": "x", "resource_type": "x", "time": "yesterday"}, "time"),
        ({"trace_name": "x", "resource_type": "x", "time": T0, "trace_rating": "bad"}, "trace_rating"),
    ):
        with pytest.raises(TraceError, match=field):
            trace_from_json(bad)


def test_captured_cts_trace_is_accepted(testdata_dir: Path) -> None:
    listing = json.loads((testdata_dir / "captured/cts/cts_v3_list_traces_response_200.json").read_text())
    trace = trace_from_json(listing["traces"][0])
    assert (trace.trace_name, trace.trace_rating, trace.resource_type) == ("deleteEip", "warning", "eip")
    assert trace.to_json()["time"] == 1472148708232
