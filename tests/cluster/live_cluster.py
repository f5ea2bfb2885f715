"""A live cluster on loopback for the cluster tests: one ZooKeeper (Debian's 3.8, standalone), four
ClickHouse 18.16 servers as 2 shards x 2 replicas, each with its own folder and free ports.

Every process is started by PID and ended by PID (``setpriv --pdeathsig`` kills them if the test
process dies first). The servers start in parallel: the slowest start, not the sum, is the wait.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from query.api.remote_write import encode_write_request
from tests.store.clickhouse_server import BINARY, ClickHouseServer, free_port, kill_process, stop_process

CLUSTER = "infersight"
ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []

# What each node adds to the test server's config (ClickHouse merges config.d/*.xml beside config.xml).
_NODE = """<?xml version="1.0"?>
<yandex>
  <interserver_http_port>{interserver_port}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <zookeeper><node><host>127.0.0.1</host><port>{zk_port}</port></node>
    <session_timeout_ms>10000</session_timeout_ms><operation_timeout_ms>10000</operation_timeout_ms></zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <merge_tree><replicated_max_ratio_of_wrong_parts>1</replicated_max_ratio_of_wrong_parts></merge_tree>
  <macros><shard>{shard}</shard><replica>r{replica}</replica></macros>
  <remote_servers><{cluster}>{shards}</{cluster}></remote_servers>
</yandex>
"""
_SHARD = "<shard><internal_replication>true</internal_replication>{replicas}</shard>"
_REPLICA = "<replica><host>127.0.0.1</host><port>{port}</port></replica>"

_ZOO_CFG = """tickTime=500
initLimit=10
syncLimit=5
dataDir={root}/data
clientPort={port}
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,stat
"""


def require_zookeeper() -> None:
    """Skip where Debian's ``zookeeper`` is not installed; in CI (env ``CI`` set) fail instead."""
    if not os.path.exists(ZOOKEEPER_JAR) or shutil.which("java") is None:
        message = "zookeeper not installed (tools/system-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class ZooKeeper:
    """One standalone ZooKeeper on ``127.0.0.1:port`` with its own data folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "zoo.cfg").write_text(_ZOO_CFG.format(root=root, port=self.port))
        (root / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n"
            f"log4j.appender.F.File={root}/zookeeper.log\n"
            "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.F.layout.ConversionPattern=%d %p %c: %m%n\n"
        )

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> ZooKeeper:
        jars = ("log4j-1.2.jar", "slf4j-log4j12.jar")
        classpath = ":".join([str(self.root), ZOOKEEPER_JAR, *(f"/usr/share/java/{j}" for j in jars)])
        command = [
            *_DIE_WITH_PARENT,
            "java",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
            "-Dzookeeper.admin.enableServer=false",
            "-cp",
            classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(self.root / "zoo.cfg"),
        ]
        with open(self.root / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.process.poll() is not None:
                log = (self.root / "stdout.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"zookeeper exited with {self.process.returncode}: {log}")
            if time.monotonic() > deadline:
                raise TimeoutError("zookeeper did not answer ruok")
            time.sleep(0.2)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"ruok")
                return sock.recv(4) == b"imok"
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process, 15)
        self.process = None


class ClusterNode(ClickHouseServer):
    """A test server whose process is launched here and waited for elsewhere: ``--pdeathsig`` fires
    when the launching *thread* ends, so the launch stays on the caller's thread and only the wait
    for ``SELECT 1`` runs in parallel."""

    def launch(self) -> None:
        binary = BINARY if os.path.exists(BINARY) else shutil.which("clickhouse-server") or BINARY
        with open(self.root / "log" / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                [*_DIE_WITH_PARENT, binary, f"--config-file={self.root / 'config.xml'}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )

    def start(self, timeout_s: float = 120.0) -> ClusterNode:
        self.launch()
        self._wait_ready(timeout_s)
        return self


def _wait_for_zookeeper(node: ClickHouseServer, timeout_s: float = 60.0) -> None:
    """Until the node reads ZooKeeper: DDL on a replicated table before its session is up fails."""
    from clickhouse_driver import Client

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client = Client("127.0.0.1", port=node.tcp_port, connect_timeout=2)
            client.execute("SELECT count() FROM system.zookeeper WHERE path = '/'")
            client.disconnect()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


class ClickHouseCluster:
    """ZooKeeper and ``shards x replicas`` ClickHouse servers; ``nodes[(shard, replica)]``, 1-based."""

    def __init__(self, root: Path, shards: int = 2, replicas: int = 2) -> None:
        self.zookeeper = ZooKeeper(root / "zookeeper")
        self.nodes: dict[tuple[int, int], ClusterNode] = {}
        for shard in range(1, shards + 1):
            for replica in range(1, replicas + 1):
                self.nodes[(shard, replica)] = ClusterNode(root / f"ch-s{shard}-r{replica}")
        layout = "".join(
            _SHARD.format(
                replicas="".join(
                    _REPLICA.format(port=self.nodes[(s, r)].tcp_port) for r in range(1, replicas + 1)
                )
            )
            for s in range(1, shards + 1)
        )
        for (shard, replica), node in self.nodes.items():
            (node.root / "config.d").mkdir(exist_ok=True)
            (node.root / "config.d" / "cluster.xml").write_text(
                _NODE.format(
                    interserver_port=free_port(),
                    zk_port=self.zookeeper.port,
                    shard=shard,
                    replica=replica,
                    cluster=CLUSTER,
                    shards=layout,
                )
            )

    def start(self) -> ClickHouseCluster:
        """ZooKeeper first (the servers' replicated tables need it), then every server at once."""
        self.zookeeper.start()
        for node in self.nodes.values():
            node.launch()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node._wait_ready(120.0), self.nodes.values()))
            list(pool.map(_wait_for_zookeeper, self.nodes.values()))
        return self

    def dsn(self, database: str, shard: int = 1, replica: int = 1, **options: str) -> str:
        """A store DSN on one node, in cluster mode, the other nodes as ``alt_hosts``."""
        node = self.nodes[(shard, replica)]
        others = ",".join(f"127.0.0.1:{n.tcp_port}" for n in self.nodes.values() if n is not node)
        query = "&".join(f"{k}={v}" for k, v in {"cluster": CLUSTER, "alt_hosts": others, **options}.items())
        return f"{node.dsn(database)}?{query}"

    def stop(self) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.stop(), self.nodes.values()))
        self.zookeeper.stop()


class InfersightServer:
    """``infersight server`` as its own process, in its own folder (its ``.infersight`` state and
    ingest log live there), on a free port; ``kill()`` is SIGKILL, ``start()`` again reuses both."""

    def __init__(self, root: Path, dsn: str, settings: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.args = ["--set", f"store.dsn={dsn}", "--set", f"server.listen=127.0.0.1:{self.port}"]
        for key, value in (settings or {}).items():
            self.args += ["--set", f"{key}={value}"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        command = [*_DIE_WITH_PARENT, str(Path(sys.executable).parent / "infersight"), "server", *self.args]
        with open(self.root / "server.log", "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.root / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"infersight server exited with {self.process.returncode}: {log}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"infersight server on {self.url} not ready")
            time.sleep(0.3)

    def start(self) -> InfersightServer:
        self.launch()
        self.wait_ready()
        return self

    def kill(self) -> None:
        kill_process(self.process)
        self.process = None

    def stop(self) -> None:
        stop_process(self.process, 30)
        self.process = None


def post_series(url: str, series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> int:
    """One remote-write request; its status code."""
    response = httpx.post(
        f"{url}/api/v1/write",
        content=encode_write_request(series),
        headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"},
        timeout=60,
    )
    return response.status_code


def wait_for(predicate: Callable[[], object], timeout_s: float = 120.0, what: str = "condition") -> None:
    """Until ``predicate()`` is true; an AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def local_counts(
    cluster: ClickHouseCluster, table: str, where: str = "1", database: str = "infersight"
) -> dict[tuple[int, int], int]:
    """Rows of one local table on each node, asked of that node alone."""
    from clickhouse_driver import Client

    counts = {}
    for key, node in cluster.nodes.items():
        client = Client("127.0.0.1", port=node.tcp_port, connect_timeout=2)
        sql = f"SELECT count() FROM {database}.{table}_local FINAL WHERE {where}"
        counts[key] = int(client.execute(sql)[0][0])
        client.disconnect()
    return counts
