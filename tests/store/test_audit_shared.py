"""Two writers of one audit trail (two servers on a cluster), as ``infersight.leader`` sets them up:
each append holds the shared chain lock and reads the head inside it, so the chain never forks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from model.audit import Trace
from store.audit import AuditLog
from store.open import Store

T0 = 1_700_000_000_000


def _trace(i: int) -> Trace:
    return Trace(trace_name="ScaleDeployment", resource_type="serviceV2", time_ms=T0 + i, resource_id=f"s{i}")


def _seqs(store: Store) -> list[int]:
    sql = f"SELECT seq FROM {store.backend.database}.audit_traces ORDER BY seq"
    return store.backend.query(sql).column(0).to_pylist()


def test_two_writers_sharing_the_lock_chain_every_record_once(store: Store) -> None:
    lock = threading.Lock()
    writers = [AuditLog(store.backend, chain_lock=lambda: lock) for _ in range(2)]
    with ThreadPoolExecutor(4) as pool:
        seqs = [s for got in pool.map(lambda i: writers[i % 2].append([_trace(i)]), range(30)) for s in got]
    assert sorted(seqs) == list(range(1, 31))
    assert _seqs(store) == list(range(1, 31))
    verdict = writers[0].verify()
    assert verdict.intact, verdict.problems
    assert verdict.checked == 30


def test_two_writers_without_the_lock_would_fork(store: Store) -> None:
    """What the lock prevents: each writer's remembered head goes stale once the other appends."""
    writers = [AuditLog(store.backend) for _ in range(2)]
    writers[0].append([_trace(0)])
    writers[1].append([_trace(1)])
    writers[0].append([_trace(2)])
    assert _seqs(store) == [1, 2, 2]
