"""Outages on the live cluster: one ClickHouse replica and one infersight server SIGKILLed mid-ingest.

A sender posts numbered batches by remote write, each to one server and, if that one does not
answer 204, to the other (as Prometheus retries). A third of the way in, replica 2 of shard 1 and
server 1 are killed; two thirds in, both come back in the same folders. Every batch must end up
acknowledged, every acknowledged sample must be read back exactly once (one point per series and
timestamp: a batch the killed server had logged and the other then took again is not doubled),
the survivor answers queries throughout, and the killed replica catches up with its peer.
"""

from __future__ import annotations

import httpx
import pytest

from store.open import Store
from tests.cluster.conftest import DATABASE
from tests.cluster.live_cluster import (
    ClickHouseCluster,
    InfersightServer,
    local_counts,
    post_series,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.integration]

BATCHES = 60
SERIES_PER_BATCH = 20
POINTS = 5
BASE_MS = 1_700_100_000_000
METRIC = "outage_probe"


def _batch(k: int) -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
    return [
        (
            {"__name__": METRIC, "batch": str(k), "series": str(j)},
            [(BASE_MS + k * 10_000 + p * 1000, float(k * 1000 + j * 10 + p)) for p in range(POINTS)],
        )
        for j in range(SERIES_PER_BATCH)
    ]


def _send(k: int, order: list[InfersightServer]) -> bool:
    for server in order:
        try:
            if post_series(server.url, _batch(k)) == 204:
                return True
        except httpx.TransportError:
            continue
    return False


def _query(url: str, query: str) -> dict:
    params = {"query": query, "time": str(BASE_MS / 1000 + BATCHES * 10 + 60)}
    return httpx.get(f"{url}/api/v1/query", params=params, timeout=60).json()


def test_a_killed_replica_and_server_lose_and_double_nothing(
    live_cluster: ClickHouseCluster, servers: list[InfersightServer], cluster_store: Store
) -> None:
    first, second = servers
    replica = live_cluster.nodes[(1, 2)]
    acknowledged, answered_during_outage = [], []
    for k in range(BATCHES):
        if k == BATCHES // 3:
            replica.kill()
            first.kill()
        if k == 2 * BATCHES // 3:
            first.launch()
            replica.start()
            first.wait_ready()
        if _send(k, [first, second] if k % 2 == 0 else [second, first]):
            acknowledged.append(k)
        if BATCHES // 3 <= k < 2 * BATCHES // 3 and k % 5 == 0:
            answered_during_outage.append(_query(second.url, f"count({METRIC})")["status"])
    assert acknowledged == list(range(BATCHES))
    assert answered_during_outage == ["success"] * len(answered_during_outage)
    expected_points = BATCHES * SERIES_PER_BATCH * POINTS

    def points() -> float:
        result = _query(second.url, f"sum(count_over_time({METRIC}[1h]))")["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    wait_for(lambda: points() >= expected_points, timeout_s=180, what="every acknowledged sample")
    per_series = _query(first.url, f"count_over_time({METRIC}[1h])")["data"]["result"]
    assert len(per_series) == BATCHES * SERIES_PER_BATCH
    assert {s["value"][1] for s in per_series} == {str(POINTS)}  # none lost, none doubled
    sql = f"SELECT count() FROM {DATABASE}.samples FINAL WHERE metric_name = '{METRIC}'"
    assert cluster_store.backend.query(sql).column(0)[0].as_py() == expected_points
    where = f"metric_name = '{METRIC}'"
    wait_for(
        lambda: (c := local_counts(live_cluster, "samples", where))[(1, 2)] == c[(1, 1)],
        timeout_s=180,
        what="the killed replica to catch up",
    )
