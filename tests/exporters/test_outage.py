"""No loss, no duplicates: producers keep writing while ClickHouse 18.16 is SIGKILLed for 30 s, and
while a producer is SIGKILLed mid-batch and restarted; every acknowledged sample is then stored once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from model.labels import Matcher, MatchOp
from store.open import open_store
from tests.exporters.outage_producer import SERIES, T0, acked
from tests.store.clickhouse_server import ClickHouseServer, require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ClickHouseServer]:
    require_binary()
    started = ClickHouseServer(tmp_path / "clickhouse").start()
    open_store(started.dsn("outage")).close()  # schema first, so producers never race on DDL
    yield started
    started.stop()


def _spawn(server: ClickHouseServer, tmp_path: Path, producer: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.exporters.outage_producer",
            server.dsn("outage"),
            str(tmp_path / f"buffer-{producer}"),
            str(tmp_path / f"ack-{producer}"),
            producer,
            *extra,
        ],
        cwd=REPO,
        stderr=open(tmp_path / f"log-{producer}", "ab"),
    )


def _finish(tmp_path: Path, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for producer in procs:
        (tmp_path / f"buffer-{producer}.stop").touch()
    for producer, proc in procs.items():
        rc = proc.wait(180)
        assert rc == 0, (tmp_path / f"log-{producer}").read_text()[-3000:]


def _assert_exactly_once(server: ClickHouseServer, tmp_path: Path, producers: list[str]) -> None:
    store = open_store(server.dsn("outage"))
    try:
        dupes = store.backend.query(
            "SELECT fingerprint, ts_ms, count() AS n FROM outage.samples FINAL GROUP BY fingerprint, ts_ms "
            "HAVING n > 1 LIMIT 5"
        )
        assert dupes.num_rows == 0
        for producer in producers:
            expected = acked(tmp_path / f"ack-{producer}")
            assert expected == list(range(len(expected)))  # acknowledged without gaps
            series = store.querier.select(
                [Matcher("__name__", MatchOp.EQ, "outage_test"), Matcher("producer", MatchOp.EQ, producer)],
                T0,
                T0 + 10**9,
            )
            assert len(series) == SERIES
            for s in series:
                stored = [(t - T0) // 1000 for t in s.ts_ms.tolist()]
                assert stored == expected, f"producer {producer} series {s.labels['k']}"
                assert s.values.tolist() == [float(i) for i in expected]
            finals = store.backend.query(
                "SELECT count() AS n FROM outage.samples FINAL WHERE metric_name = 'outage_test' AND "
                "fingerprint IN (SELECT fingerprint FROM outage.series WHERE has(label_values, {p:String}))",
                {"p": producer},
            )
            assert finals.column(0)[0].as_py() == SERIES * len(expected)
    finally:
        store.close()


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 180) -> None:
    """Wait on what the producers did, never on how fast a loaded machine starts them."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_server_killed_for_30s_loses_and_duplicates_nothing(server: ClickHouseServer, tmp_path: Path) -> None:
    producers = ["a", "b", "c"]
    procs = {p: _spawn(server, tmp_path, p) for p in producers}

    def total() -> int:
        return sum(len(acked(tmp_path / f"ack-{p}")) for p in producers)

    _wait_for(
        lambda: all(len(acked(tmp_path / f"ack-{p}")) >= 20 for p in producers), "every producer to ack"
    )
    server.kill()
    at_kill = total()
    time.sleep(31)
    _wait_for(lambda: total() > at_kill + 100, "producers to accept while the store is gone")
    assert all(proc.poll() is None for proc in procs.values())
    server.start()
    time.sleep(3)
    _finish(tmp_path, procs)
    _assert_exactly_once(server, tmp_path, producers)


def test_producer_killed_mid_batch_and_restarted(server: ClickHouseServer, tmp_path: Path) -> None:
    victim = _spawn(server, tmp_path, "a", "--die-after", "57")
    other = _spawn(server, tmp_path, "b")
    assert victim.wait(60) == -9  # SIGKILLed after batch 57 was accepted, before it was acknowledged
    buffered = tmp_path / "buffer-a"
    assert (buffered / "open.wal").stat().st_size > 0  # the open batch survived on disk
    restarted = _spawn(server, tmp_path, "a")
    _wait_for(lambda: 60 in acked(tmp_path / "ack-a"), "the restarted producer to ack past the killed batch")
    _finish(tmp_path, {"a": restarted, "b": other})
    assert int((tmp_path / "buffer-a.pending").read_text()) > 0  # the restart found samples to replay
    _assert_exactly_once(server, tmp_path, ["a", "b"])
