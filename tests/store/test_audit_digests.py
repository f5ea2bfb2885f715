"""The audit trail against its signed digests: every kind of tampering is reported, an untouched
trail verifies, and records newer than the last digest are reported as not yet covered."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.audit import Trace, TraceUser
from store.audit import AuditLog, _table
from store.audit_chain import content_hash
from store.audit_digests import DigestFolder, load_or_create_key, sign
from store.audit_verify import AuditVerdict
from store.open import Store

T0 = 1_764_000_000_000


def _trace(i: int) -> Trace:
    return Trace(
        trace_name="ScaleDeployment",
        resource_type="serviceV2",
        time_ms=T0 + i * 1000,
        project_id="proj-a",
        resource_id=f"svc-{i % 4}",
        user=TraceUser("u1", "alice", "d1", "domain"),
        message=f"operation {i}",
    )


def _mutate(store: Store, sql: str) -> None:
    store.backend.execute(f"{sql} SETTINGS mutations_sync = 1")


def _rows(store: Store, where: str = "1 = 1") -> list[dict]:
    return store.backend.query(
        f"SELECT * FROM infersight.audit_traces WHERE {where} ORDER BY seq"
    ).to_pylist()


def _folder(tmp_path: Path) -> DigestFolder:
    return DigestFolder(tmp_path / "digests", load_or_create_key(tmp_path / "audit.key"))


def _log(store: Store, tmp_path: Path, records: int = 250, close: bool = True) -> AuditLog:
    log = AuditLog(store.backend, _folder(tmp_path), digest_every_records=100)
    for start in range(0, records, 25):
        log.append([_trace(i) for i in range(start, min(records, start + 25))], now_ms=T0 + start)
    if close:
        log.close()
    return log


def _kinds(verdict: AuditVerdict) -> set[str]:
    return {p.kind for p in verdict.problems}


def test_untouched_trail_verifies_against_its_digests(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path, close=False)
    verdict = log.verify()
    assert verdict.intact, verdict.render()
    assert (verdict.checked, verdict.digests, verdict.covered_to_seq, verdict.not_covered) == (
        250,
        2,
        200,
        50,
    )
    log.close()
    verdict = log.verify()
    assert verdict.intact, verdict.render()
    assert (verdict.digests, verdict.covered_to_seq, verdict.not_covered) == (3, 250, 0)
    # A fresh reader (another process: the CLI) with the same key and folder agrees.
    again = AuditLog(chdb_store.backend, _folder(tmp_path)).verify()
    assert again.intact
    assert again.to_json()["covered_to_seq"] == 250


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert len(key) == 32


def test_records_past_the_last_digest_are_not_yet_covered(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path, records=130, close=False)
    verdict = log.verify()
    assert verdict.intact
    assert (verdict.covered_to_seq, verdict.not_covered) == (100, 30)
    assert "30 not yet covered" in verdict.render()


def test_deleting_the_newest_records_is_tampering(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path)
    _mutate(chdb_store, "ALTER TABLE infersight.audit_traces DELETE WHERE seq > 240")
    verdict = log.verify()
    assert not verdict.intact
    (problem,) = [p for p in verdict.problems if p.kind == "removed"]
    assert problem.seq == 241
    assert "newest records were deleted" in problem.detail


def test_deleting_the_newest_records_past_the_last_digest_is_not_covered(
    chdb_store: Store, tmp_path: Path
) -> None:
    # Records no digest covers yet can go unnoticed: that is what "not yet covered" warns about.
    log = _log(chdb_store, tmp_path, records=130, close=False)
    _mutate(chdb_store, "ALTER TABLE infersight.audit_traces DELETE WHERE seq > 120")
    verdict = log.verify()
    assert verdict.intact
    assert verdict.not_covered == 20


def test_truncating_the_whole_trail_is_tampering(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path)
    chdb_store.backend.execute("TRUNCATE TABLE infersight.audit_traces")
    chdb_store.backend.execute("TRUNCATE TABLE infersight.audit_anchors")
    verdict = log.verify()
    assert not verdict.intact
    assert verdict.checked == 0
    assert any("whole trail was emptied" in p.detail for p in verdict.problems)


def test_rewriting_the_chain_and_its_anchors_is_tampering(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path)
    # Someone with database access rewrites record 3 and re-hashes every record after it, and
    # replaces the anchor rows to match: only the signed digests outside the database disagree.
    rows = _rows(chdb_store)
    rows[2]["message"] = "rewritten"
    prev = rows[1]["hash"]
    for row in rows[2:]:
        row["prev_hash"] = prev
        row["hash"] = prev = content_hash(prev, row)
    _mutate(chdb_store, "ALTER TABLE infersight.audit_traces DELETE WHERE seq >= 3")
    chdb_store.backend.execute("TRUNCATE TABLE infersight.audit_anchors")
    chdb_store.backend.insert("audit_traces", _table(rows[2:]))
    chdb_store.backend.insert(
        "audit_anchors",
        pa.table(
            {
                "seq": pa.array([100, 200, 250], pa.uint64()),
                "hash": [rows[99]["hash"], rows[199]["hash"], rows[249]["hash"]],
                "record_time_ms": pa.array([T0] * 3, pa.int64()),
            }
        ),
    )
    verdict = log.verify()
    assert not verdict.intact
    rewritten = [p for p in verdict.problems if p.kind == "rewritten"]
    assert [p.seq for p in rewritten] == [100, 200, 250]


def test_editing_a_middle_record_is_tampering(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path)
    _mutate(chdb_store, "ALTER TABLE infersight.audit_traces UPDATE message = 'nothing' WHERE seq = 117")
    verdict = log.verify()
    assert not verdict.intact
    assert (verdict.problems[0].kind, verdict.problems[0].seq) == ("changed", 117)


@pytest.mark.parametrize("number", [1, 2, 3])
def test_deleting_a_digest_file_is_tampering(chdb_store: Store, tmp_path: Path, number: int) -> None:
    log = _log(chdb_store, tmp_path)
    (tmp_path / "digests" / f"{number:010d}.json").unlink()
    verdict = log.verify()
    assert not verdict.intact
    assert "digest" in _kinds(verdict), verdict.render()


def test_editing_a_digest_file_is_tampering(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path)
    path = tmp_path / "digests" / "0000000002.json"
    data = json.loads(path.read_text())
    data["last_seq"], data["count"] = 190, 90  # "those last ten records never existed"
    path.write_text(json.dumps(data))
    verdict = log.verify()
    assert not verdict.intact
    assert any("signature does not match" in p.detail for p in verdict.problems)


def test_a_digest_forged_without_the_key_is_tampering(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path)
    # Delete the newest records, then forge a digest that says the trail ended there, signed with
    # a key of the forger's own, in place of the real last digest.
    _mutate(chdb_store, "ALTER TABLE infersight.audit_traces DELETE WHERE seq > 240")
    chdb_store.backend.execute("TRUNCATE TABLE infersight.audit_anchors")
    folder = tmp_path / "digests"
    real = json.loads((folder / "0000000003.json").read_text())
    (row240,) = _rows(chdb_store, "seq = 240")
    from store.audit_digests import digest_from_json

    forged = digest_from_json(dict(real, last_seq=240, count=40, head_hash=row240["hash"]))
    forged = sign(b"k" * 32, forged)
    (folder / "0000000003.json").write_text(json.dumps(forged.to_json()))
    verdict = log.verify()
    assert not verdict.intact
    assert any("signature does not match" in p.detail for p in verdict.problems)


def test_every_gap_in_seq_is_reported(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path)
    _mutate(chdb_store, "ALTER TABLE infersight.audit_traces DELETE WHERE seq IN (12, 13, 150)")
    verdict = log.verify()
    gaps = [(p.seq, p.detail) for p in verdict.problems if "gap in seq" in p.detail]
    assert [seq for seq, _ in gaps] == [14, 151]
    assert "records 12..13" in gaps[0][1]


def test_a_range_is_checked_from_the_digest_before_it(chdb_store: Store, tmp_path: Path) -> None:
    log = _log(chdb_store, tmp_path)
    verdict = log.verify(from_ms=T0 + 150, to_ms=T0 + 175)
    assert verdict.intact
    assert verdict.checked == 100  # records 101..200: from the boundary of digest 1 to the range's end


def test_timed_digest_covers_waiting_records(chdb_store: Store, tmp_path: Path) -> None:
    now = [1000.0]
    log = AuditLog(
        chdb_store.backend,
        _folder(tmp_path),
        digest_every_records=100,
        digest_every_s=60,
        clock=lambda: now[0],
    )
    log.append([_trace(i) for i in range(5)])
    assert not log.digest_if_due()
    now[0] += 61
    assert log.digest_if_due()
    verdict = log.verify()
    assert (verdict.intact, verdict.covered_to_seq, verdict.not_covered) == (True, 5, 0)


_TAMPERING = st.one_of(
    st.tuples(st.just("delete"), st.sets(st.integers(1, 60), min_size=1, max_size=5)),
    st.tuples(st.just("newest"), st.integers(1, 60)),
    st.tuples(
        st.just("edit"), st.integers(1, 60), st.sampled_from(["message", "user_name", "code", "time_ms"])
    ),
    st.tuples(st.just("swap"), st.integers(1, 59)),
)


@pytest.fixture
def covered_trail(chdb_store: Store, tmp_path: Path) -> tuple[Store, AuditLog, list[dict]]:
    log = AuditLog(chdb_store.backend, _folder(tmp_path), digest_every_records=20)
    log.append([_trace(i) for i in range(60)], now_ms=T0)
    return chdb_store, log, _rows(chdb_store)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tampering=_TAMPERING)
def test_any_tampering_with_covered_records_is_reported(
    covered_trail: tuple[Store, AuditLog, list[dict]], tampering: tuple
) -> None:
    store, log, original = covered_trail
    rows = [dict(r) for r in original]
    kind = tampering[0]
    if kind == "delete":
        rows = [r for r in rows if r["seq"] not in tampering[1]]
    elif kind == "newest":
        rows = [r for r in rows if r["seq"] <= 60 - tampering[1]]
    elif kind == "edit":
        row, field = rows[tampering[1] - 1], tampering[2]
        row[field] = row[field] + 1 if field == "time_ms" else row[field] + "!"
    else:
        i = tampering[1] - 1
        rows[i]["seq"], rows[i + 1]["seq"] = rows[i + 1]["seq"], rows[i]["seq"]
    store.backend.execute("TRUNCATE TABLE infersight.audit_traces")
    if rows:
        store.backend.insert("audit_traces", _table(rows))
    try:
        assert not log.verify().intact, tampering
    finally:
        store.backend.execute("TRUNCATE TABLE infersight.audit_traces")
        store.backend.insert("audit_traces", _table(original))
    assert log.verify().intact
