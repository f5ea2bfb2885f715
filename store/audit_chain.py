"""The audit trail's hash chain: how a row's hash is made, and how a range is checked.

``hash = sha256(prev_hash + "\\n" + canonical JSON of the row's content)``; ``seq`` is not part of
the content, so a row moved to another position stays self-consistent and is caught by its link
instead — which is what lets ``verify`` tell *reordered* apart from *changed*.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
# Row columns that the hash does not cover: the position, and the chain fields themselves.
_NOT_CONTENT = frozenset({"seq", "day", "prev_hash", "hash"})


def content_hash(prev_hash: str, row: dict[str, Any]) -> str:
    content = {k: v for k, v in row.items() if k not in _NOT_CONTENT}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Tampering:
    """The first place the chain breaks: ``kind`` is changed, removed, inserted or reordered."""

    kind: str
    seq: int
    trace_id: str
    detail: str


def verify_rows(
    rows: Sequence[dict[str, Any]], start_hash: str, anchors: dict[int, str] | None = None
) -> Tampering | None:
    """Walk rows in stored ``seq`` order from a trusted ``start_hash``; the first break, or None.

    ``rows[0]`` must be the row whose ``prev_hash`` should equal ``start_hash``.
    """
    later_hashes = {row["hash"]: i for i, row in enumerate(rows)}
    prev: dict[str, Any] | None = None
    grand: dict[str, Any] | None = None
    for i, row in enumerate(rows):
        seq, trace_id = int(row["seq"]), str(row["trace_id"])
        if content_hash(row["prev_hash"], row) != row["hash"]:
            return Tampering("changed", seq, trace_id, "content does not match its hash")
        expected_prev = prev["hash"] if prev is not None else start_hash
        if prev is not None and seq == int(prev["seq"]):
            # Two records at one position: the genuine one is the one its successor links to.
            successor = rows[i + 1] if i + 1 < len(rows) else None
            forged = prev if successor is not None and successor["prev_hash"] == row["hash"] else row
            return Tampering(
                "inserted", seq, str(forged["trace_id"]), f"a second record holds position {seq}"
            )
        if row["prev_hash"] != expected_prev:
            if grand is not None and row["prev_hash"] == grand["hash"]:
                assert prev is not None
                return Tampering(
                    "inserted", int(prev["seq"]), str(prev["trace_id"]), "record is not part of the chain"
                )
            if later_hashes.get(row["prev_hash"], -1) > i:
                return Tampering("reordered", seq, trace_id, "record follows one that was written after it")
            return Tampering("removed", seq, trace_id, "the record before this one is missing")
        if anchors and seq in anchors and anchors[seq] != row["hash"]:
            return Tampering("changed", seq, trace_id, "chain was rewritten: hash differs from its anchor")
        grand, prev = prev, row
    return None
