"""The benchmark's peers, real binaries on loopback: Prometheus 2.42 and VictoriaMetrics 1.79.

Each gets its own data folder and a free port, is stopped by its PID, and is loaded the way it
would be in production backfills: promtool blocks for Prometheus, the text import API for VM.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PIDS: dict[str, int] = {}  # base URL -> the serving process, for CPU accounting


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_exact(pid: int) -> float:
    """CPU time the process's threads now running have used so far, to the nanosecond (each thread's
    ``schedstat``; a thread that has ended no longer counts, so compare only around short spans).
    ``cpu_seconds`` counts in ticks of 10 ms, coarser than one dashboard refresh."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            continue
    return total / 1e9


def settle(
    pids: Iterable[int], busy_cores: float = 0.05, window_s: float = 2.0, timeout_s: float = 120
) -> float:
    """Wait until the processes together use under ``busy_cores`` over ``window_s`` (or ``timeout_s``
    passed); the seconds waited. After a bulk load each system keeps working for a while
    (Prometheus compacts its head, VictoriaMetrics and chDB merge parts): timed meanwhile, every
    system's figure would carry the others' background work, the first span most."""
    pids = list(pids)
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(window_s)
        if sum(cpu_seconds(pid) for pid in pids) - before < busy_cores * window_s:
            break
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout_s: float = 600) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.load(resp)


def query_range(base: str, query: str, start_s: int, end_s: int, step_s: int, extra: str = "") -> Any:
    params = urllib.parse.urlencode({"query": query, "start": start_s, "end": end_s, "step": step_s})
    return get_json(f"{base}/api/v1/query_range?{params}{extra}")


def _wait_ready(base: str, what: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if get_json(f"{base}/api/v1/query?query=1", 5).get("status") == "success":
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{what} did not start; see {log}")


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def create_blocks(openmetrics: Path, tsdb: Path) -> None:
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(tsdb)],
        check=True,
        capture_output=True,
    )


@contextmanager
def prometheus(root: Path, tsdb: Path, *extra_args: str) -> Iterator[str]:
    """Prometheus on ``tsdb`` (backfilled, or empty with a receiver in ``extra_args``); yields its URL."""
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    port = free_port()
    args = [
        "prometheus",
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={tsdb}",
        "--storage.tsdb.retention.time=100y",
        "--query.timeout=10m",
        "--query.max-samples=1000000000",
        f"--web.listen-address=127.0.0.1:{port}",
        *extra_args,
    ]
    with _process(args, root / "prometheus.log") as proc:
        base = f"http://127.0.0.1:{port}"
        PIDS[base] = proc.pid
        _wait_ready(base, "prometheus", root / "prometheus.log")
        yield base


@contextmanager
def victoriametrics(root: Path, chunks: Iterable[bytes], cache: bool = False) -> Iterator[str]:
    """VictoriaMetrics on its own folder, loaded with ``chunks`` of Prometheus text; yields its URL.

    ``cache``: keep its rollup result cache (a query can still skip it with ``nocache=1``).
    """
    port = free_port()
    args = [
        "victoria-metrics",
        f"-storageDataPath={root / 'vm-data'}",
        "-retentionPeriod=100y",
        f"-httpListenAddr=127.0.0.1:{port}",
        *(() if cache else ("-search.disableCache",)),  # time the engine, not its result cache
        "-search.maxPointsPerTimeseries=1000000",
        "-search.maxSamplesPerQuery=10000000000",
        "-search.maxQueryDuration=10m",
    ]
    with _process(args, root / "victoria-metrics.log") as proc:
        base = f"http://127.0.0.1:{port}"
        PIDS[base] = proc.pid
        _wait_ready(base, "victoria-metrics", root / "victoria-metrics.log")
        for chunk in chunks:
            request = urllib.request.Request(f"{base}/api/v1/import/prometheus", data=chunk, method="POST")
            with urllib.request.urlopen(request, timeout=600) as resp:
                resp.read()
        with urllib.request.urlopen(f"{base}/internal/force_flush", timeout=600) as resp:
            resp.read()
        yield base
