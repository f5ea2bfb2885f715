"""Ingest throughput and bytes per sample: infersight on chDB and on ClickHouse 18.16, against
Prometheus 2.42 and VictoriaMetrics 1.79 ingesting the same series by remote write, same machine, same run.

Run: ``python -m bench.ingest [--quick]``; ends with one JSON line. Figures (samples/s unless named):

- ``<store>_<batch>``: samples/s through ``SampleWriter.write`` (label checks, fingerprints, series
  rows, in-batch dedup, column insert) at batches of 1k/10k/100k samples — chDB in-process, the
  18.16 server over the native protocol. Samples are built beforehand, as a collector hands them over;
- ``chdb_remote_write_<batch>``, ``clickhouse_18_16_remote_write_<batch>``: the same batches as
  remote-write POSTs to infersight's own ``/api/v1/write`` (``create_app`` with the server's ingest
  log, ``exporters/ingest_log.py``, in a separate process, on chDB or on the 18.16 server, as
  ``infersight server`` runs): HTTP, snappy, protobuf, the log, then the writer. Timed from the
  first POST until ``POST /bench/flush`` (a bench-only route) answers, which it does once the log
  has inserted every sample acknowledged so far (a committed part: readable). So the window holds
  every INSERT, not only the acks. After the server stopped, the store is opened here and must hold
  every sample sent exactly once (``FINAL`` count; not timed), or the bench fails;
  ``…_remote_write_acked_<batch>``: the same window ended at the last answer (each request written
  to the log's WAL, not fsynced; the inserts still running);
- ``chdb_otlp_<batch>`` (and ``chdb_otlp_acked_<batch>``): the same samples, under series of their own,
  as OTLP/HTTP metrics POSTs (protobuf, gzip; each series a gauge, which keeps its name) to the same
  server's ``/v1/metrics``, timed the same way: OTLP ingest against remote write on one store;
- ``<peer>_<batch>``: samples/s of those remote-write POSTs to the peer (bodies encoded beforehand,
  identical for every receiver, sent back to back over one keep-alive connection) until the peer
  has answered each (acknowledged). Prometheus answers once the samples are in its head and WAL
  (written, not fsynced; readable at once); VictoriaMetrics once they are in its in-memory buffers
  (searchable within about a second; lost if it dies first).
  ``victoriametrics_1_79_readable_<batch>``: the same window ended when ``/internal/force_flush``
  (VictoriaMetrics' own way to make what it took searchable at once) has answered.
  Like for like, then: readable against readable (``chdb_remote_write_<batch>`` against
  ``victoriametrics_1_79_readable_<batch>`` and ``prometheus_2_42_<batch>``), acknowledged against
  acknowledged (``…_acked_<batch>`` against ``victoriametrics_1_79_<batch>``);
- ``bytes_per_sample_*``: on-disk size after compaction — ClickHouse ``system.parts`` bytes of the
  samples and series tables after ``OPTIMIZE … FINAL``; Prometheus: the TSDB block ``promtool`` builds
  from the same samples; VictoriaMetrics: ``vm_data_size_bytes`` after a forced flush.

The data (full: 2,000 series of 500 points per run; --quick: 1,000 of 100), 10 s apart, per pod of an
LLM service: a request counter, a request-latency histogram (8 cumulative buckets, ``_sum`` with
2-decimal latencies, ``_count``), an average first-token latency gauge (2 decimals) and a GPU
utilisation gauge (integer %): most series are counters or buckets, as on a real vLLM/TGI target.
Batches are time-major (one scrape of every series after the other), cut at exactly ``batch``
samples, for the writer and the remote-write bodies alike.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import shutil
import subprocess
import sys
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
from store.writes import SampleWriter
from tests.store.clickhouse_server import ClickHouseServer, free_port

BATCHES = (1_000, 10_000, 100_000)
SeriesPoints = list[tuple[dict[str, str], list[tuple[int, float]]]]


BUCKETS_MS = ("25", "50", "100", "250", "500", "1000", "2500", "+Inf")


def make_series(n_series: int, n_points: int, t0_ms: int, run: str) -> SeriesPoints:
    """Per pod: counter, latency histogram (buckets, sum, count), latency gauge, utilisation gauge.

    Deterministic. Each scrape serves 0-20 requests with log-normal latencies (median ~150 ms).
    """
    rng = random.Random(42)
    out: SeriesPoints = []
    pod = 0
    while len(out) < n_series:
        base = {"service_id": f"svc-{pod % 50}", "source": f"pod-{pod}", "run": run}
        total, latency_sum, buckets = 0.0, 0.0, [0.0] * len(BUCKETS_MS)
        counts, sums, avgs, utils = [], [], [], []
        bucket_points: list[list[tuple[int, float]]] = [[] for _ in BUCKETS_MS]
        for p in range(n_points):
            t = t0_ms + p * 10_000
            latencies = [round(rng.lognormvariate(5, 0.8), 2) for _ in range(rng.randint(0, 20))]
            total += len(latencies)
            latency_sum += sum(latencies)
            for k, le in enumerate(BUCKETS_MS):
                buckets[k] += sum(1 for x in latencies if le == "+Inf" or x <= float(le))
                bucket_points[k].append((t, buckets[k]))
            counts.append((t, total))
            sums.append((t, latency_sum))
            avgs.append((t, round(sum(latencies) / len(latencies), 2) if latencies else 0.0))
            utils.append((t, float(rng.randint(0, 100))))
        out.append(({"__name__": "infer_service_request_total", **base}, counts))
        for k, le in enumerate(BUCKETS_MS):
            bucket = {"__name__": "infer_service_request_cost_bucket", "le": le, **base}
            out.append((bucket, bucket_points[k]))
        out.append(({"__name__": "infer_service_request_cost_sum", **base}, sums))
        out.append(({"__name__": "infer_service_request_cost_count", **base}, counts))
        out.append(({"__name__": "infer_service_first_token_avg_cost", **base}, avgs))
        out.append(({"__name__": "ma_container_gpu_util", **base}, utils))
        pod += 1
    return out[:n_series]


def _cuts(series: SeriesPoints, batch: int) -> Iterator[tuple[int, int]]:
    """[start, end) of each batch over the time-major order (flat index: point * n_series + series)."""
    total = len(series) * len(series[0][1])
    for start in range(0, total, batch):
        yield start, min(start + batch, total)


def to_batches(series: SeriesPoints, batch: int) -> list[list[Sample]]:
    """Time-major samples (as scrapes arrive), cut into batches."""
    keyed = [(to_labels(labels), points) for labels, points in series]
    flat = [
        Sample(labels, t, v)
        for p in range(len(series[0][1]))
        for labels, points in keyed
        for t, v in [points[p]]
    ]
    return [flat[start:end] for start, end in _cuts(series, batch)]


def to_requests(series: SeriesPoints, batch: int) -> list[bytes]:
    """Remote-write bodies holding exactly the samples of ``to_batches``' batches, grouped by series."""
    n = len(series)
    bodies = []
    for start, end in _cuts(series, batch):
        groups: dict[int, list[tuple[int, float]]] = {}
        for k in range(start, end):
            p, i = divmod(k, n)
            groups.setdefault(i, []).append(series[i][1][p])
        bodies.append(encode_write_request([(series[i][0], points) for i, points in groups.items()]))
    return bodies


def open_store_for_ingest(dsn: str) -> Store:
    """The store as the server opens it, writing through a plain ``SampleWriter``. The bench's data
    lies hours in the past (Prometheus only takes it so), which would make ``open_store``'s hook
    for the rollup job record every batch as late data (one more INSERT each); live data, within a
    minute of the clock, never does that."""
    store = open_store(dsn)
    store.writer = SampleWriter(store.backend)
    return store


def time_writes(store: Store, batches: list[list[Sample]]) -> float:
    start = time.perf_counter()
    for batch in batches:
        store.writer.write(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def clickhouse_bytes_per_sample(store: Store, name: str) -> dict[str, float]:
    """``bytes_per_sample_<name>``: samples and series tables on disk after merging, per sample; and
    per column of the samples table and for the series table, where the part is wide (full run)."""
    db = store.backend.database
    for table in ("samples", "series"):
        store.backend.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
    rows = float(store.backend.query(f"SELECT count() AS n FROM {db}.samples").column(0)[0].as_py())
    parts = store.backend.query(
        "SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE database = {db:String} "
        "AND table IN ('samples', 'series') AND active GROUP BY table",
        {"db": db},
    ).to_pylist()
    sizes = {row["table"]: float(row["b"]) for row in parts}
    out = {f"bytes_per_sample_{name}": sum(sizes.values()) / rows}
    if name == "chdb":  # 18.16 has no per-column figures for a part
        columns = store.backend.query(
            "SELECT name, data_compressed_bytes AS b FROM system.columns WHERE database = {db:String} "
            "AND table = 'samples'",
            {"db": db},
        ).to_pylist()
        if all(row["b"] for row in columns):
            out.update({f"bytes_per_sample_{name}_{row['name']}": row["b"] / rows for row in columns})
            out[f"bytes_per_sample_{name}_series_table"] = sizes.get("series", 0.0) / rows
    return out


def to_otlp_requests(series: SeriesPoints, batch: int) -> list[bytes]:
    """OTLP/HTTP metrics bodies (protobuf, gzip, as the Collector's ``otlphttp`` exporter sends them)
    holding exactly the samples of ``to_batches``' batches: each series a gauge of its own name and
    labels, which the receiver stores under that same name (``query/api/otlp_names.py``)."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    n = len(series)
    bodies = []
    for start, end in _cuts(series, batch):
        request = ExportMetricsServiceRequest()
        metrics = request.resource_metrics.add().scope_metrics.add().metrics
        groups: dict[int, list[tuple[int, float]]] = {}
        for k in range(start, end):
            p, i = divmod(k, n)
            groups.setdefault(i, []).append(series[i][1][p])
        for i, points in groups.items():
            labels = series[i][0]
            gauge = metrics.add(name=labels["__name__"]).gauge
            attributes = [
                KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels.items() if k != "__name__"
            ]
            for t, v in points:
                point = gauge.data_points.add(time_unix_nano=t * 1_000_000, as_double=v)
                point.attributes.extend(attributes)
        bodies.append(gzip.compress(request.SerializeToString(), 1))
    return bodies


REMOTE_WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
OTLP_HEADERS = {"Content-Encoding": "gzip", "Content-Type": "application/x-protobuf"}


def post_all(
    url: str,
    bodies: list[bytes],
    samples: int,
    settle: Callable[[httpx.Client], None] | None = None,
    headers: dict[str, str] = REMOTE_WRITE_HEADERS,
) -> tuple[float, float]:
    """Samples/s of POSTing ``bodies`` back to back: until the last answer (acknowledged), and until
    ``settle`` (inside the timed window) returns, which waits until the receiver holds them where a
    query reads them (readable; without ``settle`` the acknowledged figure)."""
    with httpx.Client(timeout=120) as client:
        start = time.perf_counter()
        for body in bodies:
            response = client.post(url, content=body, headers=headers)
            if response.status_code >= 300:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
        acked = time.perf_counter()
        if settle is not None:
            settle(client)
        return samples / (acked - start), samples / (time.perf_counter() - start)


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


def prometheus_figures(
    tmp: Path, runs: dict[int, SeriesPoints], bodies: dict[int, list[bytes]], samples: int
) -> dict[str, float]:
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
        for batch, requests in bodies.items():
            url = f"http://127.0.0.1:{port}/api/v1/write"
            out[f"prometheus_2_42_{batch}"] = post_all(url, requests, samples)[0]
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


def victoria_figures(tmp: Path, bodies: dict[int, list[bytes]], samples: int) -> dict[str, float]:
    port = free_port()
    data = tmp / "vm-data"
    args = [
        "victoria-metrics",
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={data}",
        "-retentionPeriod=100y",
    ]
    out: dict[str, float] = {}

    def settle(client: httpx.Client) -> None:  # in-memory buffers to searchable parts, as a query waits for
        client.get(f"http://127.0.0.1:{port}/internal/force_flush").raise_for_status()

    with process(args, _answers(f"http://127.0.0.1:{port}/health"), tmp / "vm.log"):
        for batch, requests in bodies.items():
            acked, readable = post_all(f"http://127.0.0.1:{port}/api/v1/write", requests, samples, settle)
            out[f"victoriametrics_1_79_{batch}"] = acked
            out[f"victoriametrics_1_79_readable_{batch}"] = readable
        time.sleep(2)  # each batch's settle flushed already; let the size metric catch up
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    size = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("vm_data_size_bytes")
    )
    out["bytes_per_sample_victoriametrics_1_79"] = size / (samples * len(bodies))
    return out


def remote_write_figures(
    tmp: Path,
    bodies: dict[int, list[bytes]],
    samples: int,
    dsn: str,
    name: str,
    otlp_bodies: dict[int, list[bytes]] | None = None,
) -> dict[str, float]:
    """infersight's own receiver: the server's app on the store ``dsn`` in its own process, like the
    peers. Each batch size's window ends when the ingest log has inserted every sample
    (``/bench/flush``); after the server stopped, the store is opened here and must hold every sample
    exactly once. ``otlp_bodies``: the same samples (under other series) as OTLP to ``/v1/metrics``."""
    port = free_port()
    log_dir = tmp / f"{name}-ingest-log"
    args = [sys.executable, "-m", "bench.ingest", "--serve", dsn, str(port), str(log_dir)]
    out: dict[str, float] = {}

    def settle(client: httpx.Client) -> None:
        response = client.post(f"http://127.0.0.1:{port}/bench/flush")
        if response.status_code != 200:
            raise RuntimeError(f"ingest log flush: {response.status_code} {response.text[:200]}")

    with process(args, _answers(f"http://127.0.0.1:{port}/-/ready"), tmp / f"{name}-infersight.log"):
        for batch, requests in bodies.items():
            acked, readable = post_all(f"http://127.0.0.1:{port}/api/v1/write", requests, samples, settle)
            out[f"{name}_remote_write_{batch}"] = readable
            out[f"{name}_remote_write_acked_{batch}"] = acked
        for batch, requests in (otlp_bodies or {}).items():
            url = f"http://127.0.0.1:{port}/v1/metrics"
            acked, readable = post_all(url, requests, samples, settle, OTLP_HEADERS)
            out[f"{name}_otlp_{batch}"] = readable
            out[f"{name}_otlp_acked_{batch}"] = acked
    store = open_store_for_ingest(dsn)
    try:
        db = store.backend.database
        stored = store.backend.query(f"SELECT count() AS n FROM {db}.samples FINAL").column(0)[0].as_py()
    finally:
        store.close()
    sent = samples * (len(bodies) + len(otlp_bodies or {}))
    if stored != sent:
        raise RuntimeError(f"{name} remote write and OTLP: {stored} samples stored, {sent} sent")
    return out


def serve(dsn: str, port: int, log_dir: Path) -> None:
    """``--serve DSN PORT LOG_DIR``: the API (``create_app``) on a store with the ingest log in front of it,
    as ``infersight server`` runs it (its event loop and HTTP server), plus ``POST /bench/flush``: answers
    once every sample acknowledged so far is inserted (in a part, readable), 503 if an insert failed."""
    from fastapi import APIRouter, Response
    from fastapi.concurrency import run_in_threadpool
    from loguru import logger

    from collector.serve import InLoopServer, run_until_signal
    from exporters.ingest_log import IngestLog
    from query.api.app import create_app
    from query.api.remote_write import LOG_DECODERS

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    store = open_store_for_ingest(dsn)
    log = IngestLog(store.writer, log_dir, decoders=LOG_DECODERS)
    flush = APIRouter()

    @flush.post("/bench/flush")
    async def flush_log() -> Response:
        return Response(status_code=200 if await run_in_threadpool(log.flush, 120) else 503)

    async def run(stop: asyncio.Event) -> None:
        server = InLoopServer(create_app(store, ingest_log=log, routers=[flush]), "127.0.0.1", port)
        await server.start()
        await stop.wait()
        await server.stop()

    log.start()
    try:
        run_until_signal(run)
    finally:
        log.stop()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="infersight ingest benchmark")
    parser.add_argument("--quick", action="store_true", help="100k samples per run (under a minute)")
    parser.add_argument("--serve", nargs=3, metavar=("DSN", "PORT", "LOG_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), Path(args.serve[2]))
        return
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
            store = open_store_for_ingest(f"chdb://{tmp / f'chdb-{batch}'}")
            figures[f"chdb_{batch}"] = time_writes(store, to_batches(series, batch))
            if batch == BATCHES[-1]:
                figures.update(clickhouse_bytes_per_sample(store, "chdb"))
            store.close()
        # One set of bodies for every remote-write receiver.
        bodies = {batch: to_requests(series, batch) for batch, series in runs.items()}
        server = ClickHouseServer(tmp / "clickhouse").start()
        try:
            for batch, series in runs.items():
                store = open_store_for_ingest(server.dsn(f"bench{batch}"))
                figures[f"clickhouse_18_16_{batch}"] = time_writes(store, to_batches(series, batch))
                if batch == BATCHES[-1]:
                    figures.update(clickhouse_bytes_per_sample(store, "clickhouse_18_16"))
                store.close()
            figures.update(
                remote_write_figures(tmp, bodies, samples, server.dsn("benchrw"), "clickhouse_18_16")
            )
        finally:
            server.stop()
        chdb_dsn = f"chdb://{tmp / 'chdb-remote-write'}"
        # OTLP: the same samples under series of their own (another ``run`` label), same store.
        otlp_runs = {
            batch: make_series(n_series, n_points, t0 + k * span_ms, f"otlp{batch}")
            for k, batch in enumerate(BATCHES)
        }
        otlp_bodies = {batch: to_otlp_requests(series, batch) for batch, series in otlp_runs.items()}
        figures.update(remote_write_figures(tmp, bodies, samples, chdb_dsn, "chdb", otlp_bodies))
        if shutil.which("prometheus"):
            figures.update(prometheus_figures(tmp, runs, bodies, samples))
        if shutil.which("victoria-metrics"):
            figures.update(victoria_figures(tmp, bodies, samples))
    rounded = {
        k: (round(v, 3) if isinstance(v, float) and v < 100 else round(v) if isinstance(v, float) else v)
        for k, v in figures.items()
    }
    print(json.dumps(rounded))  # noqa: T201 - the benchmark's result line


if __name__ == "__main__":
    main()
