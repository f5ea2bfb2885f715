"""Ingest throughput and bytes per sample: infersight on chDB and on ClickHouse 18.16, against
Prometheus 2.42 and VictoriaMetrics 1.79 ingesting the same series by remote write, same machine, same run.

Run: ``python -m bench.ingest [--quick]``; ends with one JSON line. Figures:

- ``<store>_<batch>``: samples/s through ``SampleWriter.write`` (fingerprints, series rows, column
  insert) at batches of 1k/10k/100k samples — chDB in-process, the server over the native protocol;
- ``<peer>_<batch>``: samples/s of remote-write POSTs (bodies encoded beforehand, sent back to back
  over one keep-alive connection) until the peer has answered each;
- ``bytes_per_sample_*``: on-disk size after compaction — ClickHouse ``system.parts`` bytes of the
  samples and series tables after ``OPTIMIZE … FINAL``; Prometheus: the TSDB block ``promtool`` builds
  from the same samples; VictoriaMetrics: ``vm_data_size_bytes`` after a forced flush.

The data (full: 2,000 series of 500 points per run; --quick: 1,000 of 100): LLM-serving shapes
(counters with integer steps, latency gauges with 2 decimals, utilisation percentages), 10 s apart.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from model.labels import to_labels
from model.series import Sample
from query.api.remote_write import encode_write_request
from store.open import Store, open_store
from tests.store.clickhouse_server import ClickHouseServer, free_port

BATCHES = (1_000, 10_000, 100_000)
SeriesPoints = list[tuple[dict[str, str], list[tuple[int, float]]]]


def make_series(n_series: int, n_points: int, t0_ms: int, run: str) -> SeriesPoints:
    """Counters, latency gauges and utilisation gauges, deterministic."""
    rng = random.Random(42)
    out: SeriesPoints = []
    for i in range(n_series):
        kind = i % 3
        labels = {
            "__name__": (
                "infer_service_request_total",
                "infer_service_first_token_avg_cost",
                "ma_container_gpu_util",
            )[kind],
            "service_id": f"svc-{i % 50}",
            "source": f"pod-{i}",
            "run": run,
        }
        value, points = 0.0, []
        for p in range(n_points):
            if kind == 0:
                value += rng.randint(0, 20)
            elif kind == 1:
                value = round(rng.uniform(20, 400), 2)
            else:
                value = float(rng.randint(0, 100))
            points.append((t0_ms + p * 10_000, value))
        out.append((labels, points))
    return out


def to_batches(series: SeriesPoints, batch: int) -> list[list[Sample]]:
    """Time-major samples (as scrapes arrive), cut into batches."""
    keyed = [(to_labels(labels), points) for labels, points in series]
    flat = [
        Sample(labels, t, v)
        for p in range(len(series[0][1]))
        for labels, points in keyed
        for t, v in [points[p]]
    ]
    return [flat[i : i + batch] for i in range(0, len(flat), batch)]


def to_requests(series: SeriesPoints, batch: int) -> list[bytes]:
    """Remote-write bodies of about ``batch`` samples each, time-major like ``to_batches``."""
    per_request = max(1, batch // len(series))
    n_points = len(series[0][1])
    bodies = []
    for p in range(0, n_points, per_request):
        bodies.append(
            encode_write_request([(labels, points[p : p + per_request]) for labels, points in series])
        )
    return bodies


def time_writes(store: Store, batches: list[list[Sample]]) -> float:
    start = time.perf_counter()
    for batch in batches:
        store.writer.write(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def clickhouse_bytes_per_sample(store: Store) -> float:
    db = store.backend.database
    for table in ("samples", "series"):
        store.backend.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
    parts = store.backend.query(
        "SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE database = {db:String} "
        "AND table IN ('samples', 'series') AND active",
        {"db": db},
    )
    rows = store.backend.query(f"SELECT count() AS n FROM {db}.samples")
    return float(parts.column(0)[0].as_py()) / float(rows.column(0)[0].as_py())


def post_all(url: str, bodies: list[bytes], samples: int) -> float:
    headers = {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
    with httpx.Client(timeout=120) as client:
        start = time.perf_counter()
        for body in bodies:
            response = client.post(url, content=body, headers=headers)
            if response.status_code >= 300:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
        return samples / (time.perf_counter() - start)


@contextmanager
def process(args: list[str], ready: Callable[[], bool], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start: {log.read_text()[-1000:]}")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def _answers(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def prometheus_figures(tmp: Path, runs: dict[int, SeriesPoints], samples: int) -> dict[str, float]:
    port = free_port()
    (tmp / "prometheus.yml").write_text("global: {scrape_interval: 1h}\n")
    out: dict[str, float] = {}
    args = [
        "prometheus",
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'prom-tsdb'}",
        "--web.enable-remote-write-receiver",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with process(args, _answers(f"http://127.0.0.1:{port}/-/ready"), tmp / "prometheus.log"):
        for batch, series in runs.items():
            out[f"prometheus_2_42_{batch}"] = post_all(
                f"http://127.0.0.1:{port}/api/v1/write", to_requests(series, batch), samples
            )
    # On-disk size: the block promtool builds from the same samples (head data is not compacted yet).
    series = next(iter(runs.values()))
    lines = [f"# TYPE {name} gauge" for name in sorted({s[0]["__name__"] for s in series})]
    for labels, points in series:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        lines.extend(f"{labels['__name__']}{{{inner}}} {v} {t / 1000:.3f}" for t, v in points)
    (tmp / "data.om").write_text("\n".join(sorted(lines, key=lambda s: not s.startswith("#"))) + "\n# EOF\n")
    blocks = tmp / "prom-blocks"
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(tmp / "data.om"), str(blocks)],
        check=True,
        capture_output=True,
    )
    size = sum(f.stat().st_size for f in blocks.rglob("*") if f.is_file())
    out["bytes_per_sample_prometheus_2_42"] = size / samples
    return out


def victoria_figures(tmp: Path, runs: dict[int, SeriesPoints], samples: int) -> dict[str, float]:
    port = free_port()
    data = tmp / "vm-data"
    args = [
        "victoria-metrics",
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={data}",
        "-retentionPeriod=100y",
    ]
    out: dict[str, float] = {}
    with process(args, _answers(f"http://127.0.0.1:{port}/health"), tmp / "vm.log"):
        for batch, series in runs.items():
            out[f"victoriametrics_1_79_{batch}"] = post_all(
                f"http://127.0.0.1:{port}/api/v1/write", to_requests(series, batch), samples
            )
        httpx.get(f"http://127.0.0.1:{port}/internal/force_flush", timeout=60)
        time.sleep(2)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    size = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("vm_data_size_bytes")
    )
    out["bytes_per_sample_victoriametrics_1_79"] = size / (samples * len(runs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="infersight ingest benchmark")
    parser.add_argument("--quick", action="store_true", help="100k samples per run (under a minute)")
    args = parser.parse_args()
    n_series, n_points = (1_000, 100) if args.quick else (2_000, 500)
    samples = n_series * n_points
    # One run after the other in time, all in the past and sent oldest first: Prometheus' head only
    # takes samples within 1 h of the newest it has.
    span_ms = n_points * 10_000
    t0 = (int(time.time() * 1000) - len(BATCHES) * span_ms - 60_000) // 10_000 * 10_000
    runs = {
        batch: make_series(n_series, n_points, t0 + k * span_ms, f"b{batch}")
        for k, batch in enumerate(BATCHES)
    }
    figures: dict[str, float | int | str] = {"samples_per_run": samples, "series": n_series}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for batch, series in runs.items():
            store = open_store(f"chdb://{tmp / f'chdb-{batch}'}")
            figures[f"chdb_{batch}"] = time_writes(store, to_batches(series, batch))
            if batch == BATCHES[-1]:
                figures["bytes_per_sample_chdb"] = clickhouse_bytes_per_sample(store)
            store.close()
        server = ClickHouseServer(tmp / "clickhouse").start()
        try:
            for batch, series in runs.items():
                store = open_store(server.dsn(f"bench{batch}"))
                figures[f"clickhouse_18_16_{batch}"] = time_writes(store, to_batches(series, batch))
                if batch == BATCHES[-1]:
                    figures["bytes_per_sample_clickhouse_18_16"] = clickhouse_bytes_per_sample(store)
                store.close()
        finally:
            server.stop()
        if shutil.which("prometheus"):
            figures.update(prometheus_figures(tmp, runs, samples))
        if shutil.which("victoria-metrics"):
            figures.update(victoria_figures(tmp, runs, samples))
    rounded = {
        k: (round(v, 3) if isinstance(v, float) and v < 100 else round(v) if isinstance(v, float) else v)
        for k, v in figures.items()
    }
    print(json.dumps(rounded))  # noqa: T201 - the benchmark's result line


if __name__ == "__main__":
    main()
