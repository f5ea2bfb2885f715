"""The live cluster for the tests marked ``cluster``: one ZooKeeper, 2 shards x 2 replicas of
ClickHouse 18.16, and two ``infersight server`` processes on it (``?cluster=`` in their DSN), all
on loopback with their own folders, started once per session and stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.open import Store, open_store
from tests.cluster.live_cluster import ClickHouseCluster, InfersightServer, require_zookeeper
from tests.store.clickhouse_server import require_binary

DATABASE = "infersight"


@pytest.fixture(scope="session")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseCluster]:
    require_binary()
    require_zookeeper()
    cluster = ClickHouseCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def cluster_store(live_cluster: ClickHouseCluster) -> Iterator[Store]:
    """The test's own connection to the cluster (schema created through it, ON CLUSTER)."""
    store = open_store(live_cluster.dsn(DATABASE))
    yield store
    store.close()


@pytest.fixture(scope="session")
def servers(
    live_cluster: ClickHouseCluster, cluster_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[InfersightServer]]:
    """Two servers, one on each shard's first replica (the others as failover hosts), started at once."""
    root: Path = tmp_path_factory.mktemp("servers")
    started = [
        InfersightServer(root / f"server-{i}", live_cluster.dsn(DATABASE, shard=i), _SETTINGS) for i in (1, 2)
    ]
    for server in started:
        server.launch()
    try:
        for server in started:
            server.wait_ready()
        yield started
    finally:
        for server in started:
            server.stop()


_SETTINGS = {
    "store.rollup_interval_s": "0",  # the tests run the rollup job themselves, at a chosen time
    "audit.digests": "false",
    "log_level": "WARNING",
}
