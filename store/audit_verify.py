"""Checks the audit trail in the database against its signed digests (``store.audit_digests``).

The chain in the database shows a record changed, removed, inserted or reordered among the records
it still holds; the digests, kept outside the database, show what the chain alone cannot: the
newest records deleted, the whole table emptied, or the chain re-hashed after an edit. Records
newer than the last digest are only chain-checked, and reported as not yet covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from store.audit_chain import GENESIS, Tampering, verify_rows
from store.audit_digests import Digest, DigestFolder
from store.backend import Backend

MAX_PROBLEMS = 50  # a wrecked trail would otherwise answer with one problem per record


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    """What ``verify`` found: ``intact`` only when there is no problem at all."""

    checked: int
    covered_to_seq: int
    not_covered: int
    digests: int
    problems: tuple[Tampering, ...]
    digests_enabled: bool = True

    @property
    def intact(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        problems = [
            {"kind": p.kind, "seq": p.seq, "trace_id": p.trace_id, "detail": p.detail} for p in self.problems
        ]
        return {
            "ok": self.intact,
            "intact": self.intact,
            "checked": self.checked,
            "covered_to_seq": self.covered_to_seq,
            "not_covered": self.not_covered,
            "digests": self.digests,
            "digests_enabled": self.digests_enabled,
            "problems": problems,
            "tampering": problems[0] if problems else None,
        }

    def render(self) -> str:
        """The verdict as ``infersight audit verify`` prints it."""
        head = "audit trail intact" if self.intact else "audit trail TAMPERED"
        lines = [
            f"{head}: {self.checked} records checked, covered by {self.digests} digests up to seq "
            f"{self.covered_to_seq}, {self.not_covered} not yet covered"
        ]
        if not self.digests_enabled:
            lines.append("digests are off (audit.digests: false): only the chain in the database was checked")
        lines += [f"  {p.kind} at seq {p.seq}{_trace(p)}: {p.detail}" for p in self.problems]
        return "\n".join(lines)


def _trace(p: Tampering) -> str:
    return f" (trace_id {p.trace_id})" if p.trace_id else ""


def verify_trail(
    backend: Backend, folder: DigestFolder | None, from_ms: int = 0, to_ms: int = 2**62
) -> AuditVerdict:
    """Check records written in ``[from_ms, to_ms]`` (record time), and the whole trail's ends."""
    db = backend.database
    problems: list[Tampering] = []
    digests: list[Digest] = []
    anchors: list[dict[str, Any]] = []
    if folder is not None:
        # Anchors before digests: the writer writes a digest's file before its anchor row, so every
        # anchor read here has its file already in place when the folder is read next.
        anchors = backend.query(f"SELECT seq, hash FROM {db}.audit_anchors ORDER BY seq").to_pylist()
        digests, digest_problems = folder.read()
        problems += [Tampering("digest", p.number, "", p.detail) for p in digest_problems]
    covered_to = max((d.last_seq for d in digests), default=0)
    trail = backend.query(
        f"SELECT max(seq) AS hi, count() AS n, countIf(seq > {{c:UInt64}}) AS uncovered "
        f"FROM {db}.audit_traces",
        {"c": covered_to},
    ).to_pylist()[0]
    trail_hi = int(trail["hi"] or 0) if trail["n"] else 0
    if covered_to > trail_hi:
        problems.append(_missing_tail(digests, trail_hi, covered_to))
    rows, start_seq = _rows_in_range(backend, digests, from_ms, to_ms)
    if rows:
        problems += _gaps(rows, start_seq)
        start_hash = next((d.head_hash for d in digests if d.last_seq == start_seq), GENESIS)
        broken = verify_rows(rows, start_hash)
        if broken is not None and not any(p.seq == broken.seq and p.kind == broken.kind for p in problems):
            problems.append(broken)
        problems += _digest_mismatches(rows, digests)
    if anchors:
        problems += _unknown_anchors(backend, anchors, digests)
    return AuditVerdict(
        checked=len(rows),
        covered_to_seq=covered_to,
        not_covered=int(trail["uncovered"] or 0),
        digests=len(digests),
        problems=tuple(problems[:MAX_PROBLEMS]),
        digests_enabled=folder is not None,
    )


def _missing_tail(digests: list[Digest], trail_hi: int, covered_to: int) -> Tampering:
    first = trail_hi + 1
    holder = next(d for d in digests if d.first_seq <= first <= d.last_seq or d.last_seq == covered_to)
    what = "the whole trail was emptied" if trail_hi == 0 else "the newest records were deleted"
    return Tampering(
        "removed",
        first,
        "",
        f"records {first}..{covered_to} are missing ({what}): digests cover up to seq {covered_to}, "
        f"digest {holder.number} among them, but the database ends at seq {trail_hi}",
    )


def _rows_in_range(
    backend: Backend, digests: list[Digest], from_ms: int, to_ms: int
) -> tuple[list[dict[str, Any]], int]:
    """The records to walk, from the last digest boundary before the range (a trusted start)."""
    db = backend.database
    span = backend.query(
        f"SELECT min(seq) AS lo, max(seq) AS hi, count() AS n FROM {db}.audit_traces "
        "WHERE record_time_ms >= {t0:Int64} AND record_time_ms <= {t1:Int64}",
        {"t0": from_ms, "t1": to_ms},
    ).to_pylist()[0]
    if not span["n"]:
        return [], 0
    lo, hi = int(span["lo"]), int(span["hi"])
    start_seq = max((d.last_seq for d in digests if d.last_seq < lo), default=0)
    rows = backend.query(
        f"SELECT * FROM {db}.audit_traces WHERE seq > {{s0:UInt64}} AND seq <= {{s1:UInt64}} "
        "ORDER BY seq, hash",
        {"s0": start_seq, "s1": hi},
    ).to_pylist()
    return rows, start_seq


def _gaps(rows: list[dict[str, Any]], start_seq: int) -> list[Tampering]:
    """Every gap in ``seq``: each names the first record after it."""
    out = []
    expected = start_seq + 1
    for row in rows:
        seq = int(row["seq"])
        if seq > expected:
            missing = f"record {expected} is" if seq == expected + 1 else f"records {expected}..{seq - 1} are"
            out.append(Tampering("removed", seq, str(row["trace_id"]), f"{missing} missing (a gap in seq)"))
        expected = max(expected, seq + 1)
    return out


def _digest_mismatches(rows: list[dict[str, Any]], digests: list[Digest]) -> list[Tampering]:
    """Records whose chain hash or count differs from what a signed digest recorded."""
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_seq.setdefault(int(row["seq"]), []).append(row)
    lo, hi = min(by_seq), max(by_seq)
    out = []
    for digest in digests:
        if not lo <= digest.last_seq <= hi:
            continue
        at_end = by_seq.get(digest.last_seq, [])
        if at_end and all(r["hash"] != digest.head_hash for r in at_end):
            out.append(
                Tampering(
                    "rewritten",
                    digest.last_seq,
                    str(at_end[0]["trace_id"]),
                    f"chain hash differs from signed digest {digest.number}: records up to here were "
                    "changed and the chain re-hashed",
                )
            )
        if digest.first_seq >= lo:
            count = sum(len(by_seq.get(s, [])) for s in range(digest.first_seq, digest.last_seq + 1))
            if count != digest.count:
                out.append(
                    Tampering(
                        "count",
                        digest.last_seq,
                        "",
                        f"digest {digest.number} covers {digest.count} records "
                        f"({digest.first_seq}..{digest.last_seq}), the database holds {count}",
                    )
                )
    return out


def _unknown_anchors(
    backend: Backend, anchors: list[dict[str, Any]], digests: list[Digest]
) -> list[Tampering]:
    """Anchor rows naming a digest that is not in the folder: a digest file was deleted.

    The writer notes each digest's hash in ``audit_anchors``; older versions noted the chain hash of
    every hundredth record there, which is recognised and ignored.
    """
    db = backend.database
    known = {d.digest_hash() for d in digests}
    unknown = [a for a in anchors if a["hash"] not in known]
    if not unknown:
        return []
    chain = {
        (int(r["seq"]), r["hash"])
        for r in backend.query(
            f"SELECT seq, hash FROM {db}.audit_traces WHERE seq IN {{s:Array(UInt64)}}",
            {"s": sorted({int(a["seq"]) for a in unknown})},
        ).to_pylist()
    }
    return [
        Tampering(
            "digest",
            int(a["seq"]),
            "",
            f"the database notes a digest up to seq {a['seq']} that is not in the digest folder (deleted?)",
        )
        for a in unknown
        if (int(a["seq"]), a["hash"]) not in chain
    ]
