"""Ingest, reads, outages, retention, rollups and sketches on a live 2 shards x 2 replicas cluster.

The differential test's series (``tests/query/api/differential_data``) go by remote write, half of
the series to each of two ``infersight server`` processes; the same series go into one embedded
chDB store. A third of the differential queries (every third one, about 110) are asked of a
cluster server's HTTP API and of the one-node store's at two instant times and over one 5-minute
aligned range (the rollups' range), and must agree as the differential test demands.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from collector.window import WindowedSketches
from model.labels import to_labels
from model.series import Sample
from query.api.app import create_app
from store.open import Store, open_store
from store.retention import Retention
from store.rollups import RollupJob
from store.sketches import SketchReader, SketchWriter
from tests.cluster.conftest import DATABASE
from tests.cluster.live_cluster import (
    ClickHouseCluster,
    InfersightServer,
    local_counts,
    post_series,
    wait_for,
)
from tests.query.api.differential_data import HEAD_S, HISTORY_S, T0_S, head, history
from tests.query.api.differential_queries import generate
from tests.query.prometheus_ref import assert_same

pytestmark = [pytest.mark.cluster, pytest.mark.integration]

QUERIES = generate()[::3]
END_S = T0_S + HISTORY_S + HEAD_S
INSTANT_TIMES_S = (T0_S + 1800.123, END_S + 200)
RANGE_S = (T0_S, END_S, 300)
ROLLED_UP_TO_MS = (T0_S + HISTORY_S) * 1000
# The differential data only: the servers write their own series and the alert rule's ALERTS too.
_OWN = "metric_name NOT LIKE 'infersight_%' AND metric_name NOT LIKE 'ALERTS%'"


def _series() -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
    out = [(labels, [(round(t * 1000), v) for t, v in points]) for labels, points in history()]
    return out + head()


def _count(store: Store, where: str, final: bool = True) -> int:
    sql = f"SELECT count() FROM {DATABASE}.samples{' FINAL' if final else ''} WHERE {where}"
    return int(store.backend.query(sql).column(0)[0].as_py())


@pytest.fixture(scope="module")
def one_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, int]]:
    """The same series in one embedded store, rolled up to the same time; and its sample count."""
    store = open_store(f"chdb://{tmp_path_factory.mktemp('chdb') / 'data'}")
    batch = [Sample(to_labels(labels), t, v) for labels, points in _series() for t, v in points]
    for i in range(0, len(batch), 50_000):
        store.writer.write(batch[i : i + 50_000])
    RollupJob(store.backend).run(now_ms=ROLLED_UP_TO_MS)
    try:
        yield TestClient(create_app(store)), _count(store, "1")
    finally:
        store.close()


@pytest.fixture(scope="module")
def written(servers: list[InfersightServer], cluster_store: Store, one_node: tuple[TestClient, int]) -> int:
    """The series sent by remote write, alternately to each server, landed and rolled up as on the
    one node; returns how many samples that is."""
    series, expected = _series(), one_node[1]
    for i in range(0, len(series), 8):
        assert post_series(servers[(i // 8) % 2].url, series[i : i + 8]) == 204
    wait_for(lambda: _count(cluster_store, _OWN, final=False) >= expected, what="ingest to land")
    RollupJob(cluster_store.backend).run(now_ms=ROLLED_UP_TO_MS)
    return expected


def test_ingest_spreads_over_both_shards_and_is_kept_once(
    live_cluster: ClickHouseCluster, cluster_store: Store, written: int
) -> None:
    assert _count(cluster_store, _OWN) == written
    samples = local_counts(live_cluster, "samples", _OWN)
    for shard in (1, 2):
        assert samples[(shard, 1)] > 0
    assert samples[(1, 1)] + samples[(2, 1)] == written
    wait_for(
        lambda: (
            local_counts(live_cluster, "samples", _OWN)
            == {**samples, (1, 2): samples[(1, 1)], (2, 2): samples[(2, 1)]}
        ),
        what="replicas to hold their shard's rows",
    )
    rollups = local_counts(live_cluster, "rollups")
    assert rollups[(1, 1)] > 0
    assert rollups[(2, 1)] > 0


def _api(url: str, path: str, **params: str) -> dict[str, Any]:
    return httpx.get(f"{url}/api/v1/{path}", params=params, timeout=60).json()


@pytest.mark.parametrize("query", QUERIES)
def test_promql_on_the_cluster_answers_as_one_node(
    servers: list[InfersightServer], one_node: tuple[TestClient, int], written: int, query: str
) -> None:
    client, url = one_node[0], servers[0].url
    for t in INSTANT_TIMES_S:
        params = {"query": query, "time": str(t)}
        expected = client.get("/api/v1/query", params=params).json()
        assert_same(expected, _api(url, "query", **params), ordered=query.startswith("sort"))
    start, end, step = RANGE_S
    params = {"query": query, "start": str(start), "end": str(end), "step": str(step)}
    expected = client.get("/api/v1/query_range", params=params).json()
    assert_same(expected, _api(url, "query_range", **params))


def test_sketches_on_the_cluster_read_back_merged_before_and_after_the_rollup_job(
    cluster_store: Store, written: int
) -> None:
    t0_s = 1_700_020_800  # a whole hour after the data the rollup job has covered
    windows = WindowedSketches()
    rng = np.random.default_rng(7)
    total = 0
    for second in range(0, 600, 5):
        for pod in ("pod-0", "pod-1", "pod-2", "pod-3"):
            values = rng.lognormal(4.0, 1.0, 3)
            total += values.size
            windows.observe("cluster_ttft", {"service_id": "svc", "source": pod}, values, t0_s + second)
    SketchWriter(cluster_store.backend).write(windows.drain_all())
    reader = SketchReader(cluster_store.backend)
    span = (t0_s * 1000, (t0_s + 600) * 1000)
    raw = reader.merged("cluster_ttft", {}, *span, 300_000)
    assert [r.period_start_ms for r in raw] == [t0_s * 1000, (t0_s + 300) * 1000]
    assert sum(r.count for r in raw) == total
    RollupJob(cluster_store.backend).run(now_ms=(t0_s + 3600) * 1000)
    rolled = reader.merged("cluster_ttft", {}, *span, 300_000)
    assert [(r.period_start_ms, r.count) for r in rolled] == [(r.period_start_ms, r.count) for r in raw]
    assert [r.sum for r in rolled] == pytest.approx([r.sum for r in raw])


def test_retention_drops_old_partitions_on_every_node(
    live_cluster: ClickHouseCluster, cluster_store: Store, written: int
) -> None:
    old_ms = 1_577_836_800_000  # 2020-01-01
    batch = [
        Sample(to_labels({"__name__": "old_metric", "source": f"pod-{i}"}), old_ms + 10_000 * j, float(j))
        for i in range(40)
        for j in range(30)
    ]
    cluster_store.writer.write(batch)
    before = local_counts(live_cluster, "samples", "metric_name = 'old_metric'")
    assert before[(1, 1)] > 0
    assert before[(2, 1)] > 0
    dropped = Retention(15).enforce(cluster_store.backend, ROLLED_UP_TO_MS, live_cluster_name())
    assert "samples/2020-01-01" in dropped
    wait_for(
        lambda: set(local_counts(live_cluster, "samples", "metric_name = 'old_metric'").values()) == {0},
        what="the old partition gone from every replica",
    )
    assert _count(cluster_store, _OWN) == written  # the differential data is inside retention


def live_cluster_name() -> str:
    from tests.cluster.live_cluster import CLUSTER

    return CLUSTER


def test_event_retention_drops_old_partitions_on_every_node(
    live_cluster: ClickHouseCluster, cluster_store: Store
) -> None:
    from model.events import Event, EventObject
    from store.events import EventLog

    old_ms = 1_577_836_800_000  # 2020-01-01
    log = EventLog(cluster_store.backend)
    log.append(
        [
            Event(
                "pod",
                "Normal",
                "Started",
                "old",
                EventObject(pod=f"old-pod-{i}"),
                old_ms + i,
                event_id=f"old-{i}",
            )
            for i in range(40)
        ]
    )
    old = "reason = 'Started' AND message = 'old'"
    assert sum(local_counts(live_cluster, "events", old).values()) > 0
    dropped = log.enforce_retention(ROLLED_UP_TO_MS)
    assert dropped
    wait_for(
        lambda: set(local_counts(live_cluster, "events", old).values()) == {0},
        what="the old events partition gone from every replica",
    )
