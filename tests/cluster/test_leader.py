"""One leader for the singletons among two servers on the live cluster, elected through ZooKeeper.

Both servers carry a rule that always fires and notify one webhook, each on its own path: only
the leader may send. Audit records are posted to both servers at once: the chain has each exactly
once. Then the leader is SIGKILLed: the other takes over (the time is printed), sends the alert
once, and the chain goes on from where it was, still intact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from loguru import logger

from store.open import Store
from tests.cluster.conftest import ALWAYS_FIRING, DATABASE, WebhookSink
from tests.cluster.live_cluster import InfersightServer, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.integration]


def _trace(i: int) -> dict:
    return {
        "trace_name": "ScaleDeployment",
        "resource_type": "serviceV2",
        "resource_id": f"svc-{i}",
        "time": 1_700_000_000_000 + i,
        "user": {"id": "u", "name": "alice", "domain": {"id": "d", "name": "acme"}},
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "code": "200",
    }


def _post_traces(servers: list[InfersightServer], first: int, count: int) -> list[int]:
    """``count`` single-record posts, spread over the servers, eight at a time; their seqs."""

    def post(i: int) -> list[int]:
        url = servers[i % len(servers)].url
        response = httpx.post(f"{url}/api/v1/audit/traces", json=_trace(i), timeout=60)
        assert response.status_code == 200, response.text
        return response.json()["data"]["seq"]

    with ThreadPoolExecutor(8) as pool:
        return [seq for seqs in pool.map(post, range(first, first + count)) for seq in seqs]


def _chain(store: Store) -> list[int]:
    rows = store.backend.query(f"SELECT seq FROM {DATABASE}.audit_traces ORDER BY seq")
    return rows.column(0).to_pylist()


def _verified(url: str) -> dict:
    return httpx.get(f"{url}/api/v1/audit/verify", timeout=60).json()["data"]


def test_one_leader_fails_over_without_doubling_alerts_or_audit_records(
    servers: list[InfersightServer],
    webhook_sink: WebhookSink,
    cluster_store: Store,
    record_property: Callable[[str, object], None],
) -> None:
    wait_for(lambda: webhook_sink.senders(ALWAYS_FIRING), what="the leader's first notification")
    time.sleep(3)  # a few more evaluation rounds: a second process evaluating would send now
    before = webhook_sink.senders(ALWAYS_FIRING)
    assert len(before) == 1, before  # one sender, once (the next resend is a minute away)
    leader_path = before[0][1]
    leader = servers[0] if leader_path == "/from-1" else servers[1]
    follower = servers[1] if leader is servers[0] else servers[0]

    seqs = _post_traces(servers, 0, 40)
    assert sorted(seqs) == list(range(1, 41))
    assert _chain(cluster_store) == list(range(1, 41))

    killed_at = time.monotonic()
    leader.kill()
    try:
        taken_over = lambda: len(webhook_sink.senders(ALWAYS_FIRING)) > 1  # noqa: E731
        wait_for(taken_over, timeout_s=120, what="another server to take over")
        after = webhook_sink.senders(ALWAYS_FIRING)
        takeover_s = after[1][0] - killed_at
        record_property("leader_failover_s", round(takeover_s, 1))
        logger.info("leader failover: {:.1f} s from SIGKILL to the first notification after", takeover_s)
        assert after[1][1] != leader_path
        assert takeover_s < 90  # the bound is generous: the session timeout is 6 s
        seqs = _post_traces([follower], 40, 20)
        assert sorted(seqs) == list(range(41, 61))
    finally:
        leader.start()  # back as a follower (the other holds the lower election node)
    seqs = _post_traces(servers, 60, 20)
    assert sorted(seqs) == list(range(61, 81))
    assert _chain(cluster_store) == list(range(1, 81))
    verdict = _verified(follower.url)
    assert verdict["intact"], verdict["problems"]
    assert verdict["checked"] == 80
    time.sleep(3)
    assert len(webhook_sink.senders(ALWAYS_FIRING)) == 2  # the returned server does not send
