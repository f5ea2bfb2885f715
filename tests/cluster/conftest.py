"""The live cluster for the tests marked ``cluster``: one ZooKeeper, 2 shards x 2 replicas of
ClickHouse 18.16, and two ``infersight server`` processes on it (``?cluster=`` in their DSN), all
on loopback with their own folders, started once per session and stopped by PID."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from store.audit_digests import load_or_create_key
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


class WebhookSink:
    """Alert notifications received: (monotonic time, sender path, alert names), in order."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, list[str]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                names = [a.get("labels", {}).get("alertname", "") for a in body.get("alerts", [])]
                sink.received.append((time.monotonic(), self.path, names))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def senders(self, alert: str) -> list[tuple[float, str]]:
        return [(t, path) for t, path, names in list(self.received) if alert in names]


@pytest.fixture(scope="session")
def webhook_sink() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.server.shutdown()


ALWAYS_FIRING = "ClusterAlwaysFiring"
_RULES = f"""groups:
- name: cluster
  interval: 1s
  rules:
  - alert: {ALWAYS_FIRING}
    expr: vector(1)
    labels: {{severity: warning}}
"""


@pytest.fixture(scope="session")
def servers(
    live_cluster: ClickHouseCluster,
    cluster_store: Store,
    webhook_sink: WebhookSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[InfersightServer]]:
    """Two servers, one on each shard's first replica (the others as failover hosts), electing their
    leader through the cluster's ZooKeeper, started at once. Both notify the same webhook, each on
    its own path (``/from-1``, ``/from-2``), with one rule that always fires."""
    root: Path = tmp_path_factory.mktemp("servers")
    (root / "rules.yml").write_text(_RULES)
    # One digest folder and key for both (a shared volume in a real deployment): the leader signs,
    # and whichever server verifies finds every digest the database notes.
    load_or_create_key(root / "digest.key")
    started = []
    for i in (1, 2):
        settings = {
            **_SETTINGS,
            "store.zookeeper": live_cluster.zookeeper.hosts,
            "alerts.rule_files[0]": str(root / "rules.yml"),
            "alerts.webhook_urls[0]": f"{webhook_sink.url}/from-{i}",
            "audit.digest_dir": str(root / "digests"),
            "audit.key_file": str(root / "digest.key"),
        }
        dsn = live_cluster.dsn(DATABASE, shard=i)
        started.append(InfersightServer(root / f"server-{i}", dsn, settings))
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
    "audit.digest_every_s": "1",  # the leader signs every second
    "alerts.interval": "1s",
    "log_level": "WARNING",
}
