"""Ordinary queries and ingest beside hostile requests: does the server stay up, fast and small?

Run: ``python -m bench.soak [--quick] [--duration-s N] [--hostile-workers N]``.

Each target is a real server process on loopback with its own data folder: ``infersight server``
(embedded chDB, as a user starts it) and, as the peer, Prometheus 2.42 with its remote-write receiver.
Both get the same load at once from this process:

- **ingest**: 40 pods x 12 series, one remote-write request per pod every second carrying one point
  per series (a scrape's worth), after 15 minutes of backfill so the queries have data;
- **ordinary**: two clients (in this process; ingest and the hostile clients run in a child
  process) refreshing dashboard-like queries (range over the last 15 minutes at a
  15 s step, instant queries, label values) and ``/-/healthy``, back to back;
- **hostile**: ``--hostile-workers`` clients cycling through requests an attacker or a broken client
  sends: PromQL nested 30,000 levels deep (parentheses, unary minus, calls), a 20,000-term ``a + b``
  chain, a ``[30d:1ms]`` subquery, a catastrophic regex in ``label_replace``, ``format_query`` of a
  deep expression, times and steps at ±1e20/Inf/NaN, and garbage remote-write bodies (zeros, random
  bytes, a snappy header declaring 4 GiB).

Figures per target: the ordinary requests' p50/p99/max latency and their errors, ``/-/healthy``'s
p99, how the hostile requests were answered (2xx/4xx/5xx/connection failures/client timeouts), the
server's peak RSS (VmHWM) and whether it was still up and answering at the end. The last line is
the JSON of those figures. Latencies are what a client on the same 2-core machine sees, so they
include the load generator's own scheduling.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.peers import free_port
from query.api.remote_write import encode_write_request

PODS = 40
PEER_ADDRESS_SPACE = 8 << 30
BACKFILL_S = 15 * 60
WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
BUCKETS = ("25", "100", "250", "1000", "+Inf")


def _pod_series(pod: int) -> list[dict[str, str]]:
    base = {"service_id": f"svc-{pod % 10}", "source": f"pod-{pod}", "instance_name": f"pod-{pod}"}
    names = [
        "infer_service_request_total",
        "infer_service_request_cost_sum",
        "infer_service_request_cost_count",
    ]
    names += ["ma_container_cpu_util", "ma_container_memory_util", "ma_container_gpu_util"]
    series = [{"__name__": name, **base} for name in names]
    series += [{"__name__": "infer_service_request_cost_bucket", "le": le, **base} for le in BUCKETS]
    series.append({"__name__": "infer_service_request_total", "code": "500", **base})
    return series


def _points(series: list[dict[str, str]], ts_ms: int, k: int) -> list[tuple[dict[str, str], list]]:
    """Counters grow by ``k``-dependent steps, gauges wander; deterministic per (series, k)."""
    out = []
    for i, labels in enumerate(series):
        if labels["__name__"].endswith(("_total", "_count", "_bucket")):
            value = float(k * (i + 1))
        elif labels["__name__"].endswith("_sum"):
            value = float(k * 150 * (i + 1))
        else:
            value = float((k * 7 + i * 13) % 100)
        out.append((labels, [(ts_ms, value)]))
    return out


ORDINARY_RANGE = [
    'sum by (service_id) (rate(infer_service_request_total{service_id="svc-1"}[1m]))',
    'histogram_quantile(0.9, sum by (le) (rate(infer_service_request_cost_bucket{service_id="svc-1"}[1m])))',
    'avg by (source) (ma_container_cpu_util{service_id="svc-1"})',
    'sum(rate(infer_service_request_total{code="500"}[1m])) / sum(rate(infer_service_request_total[1m]))',
]
ORDINARY_INSTANT = ["up or vector(1)", "count(ma_container_gpu_util)", "max(ma_container_memory_util)"]


def _deep(open_: str, close: str, depth: int, core: str = "1") -> str:
    return open_ * depth + core + close * depth


def hostile_requests() -> list[tuple[str, str, dict]]:
    """(name, method, httpx request kwargs); paths are relative to the server's base URL."""
    long_value = "a" * 40
    regex_bomb = (
        f'label_replace(label_replace(vector(1), "v", "{long_value}", "", ""), "w", "$1", "v", "(a+)+b")'
    )
    zeros = bytes(1 << 20)
    # A snappy block starts with its uncompressed length as a varint: this one claims ~4 GiB.
    huge_claim = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + os.urandom(64)
    garbage = random.Random(7).randbytes(256 * 1024)
    requests: list[tuple[str, str, dict]] = [
        ("deep_parens", "POST", {"url": "/api/v1/query", "data": {"query": _deep("(", ")", 30_000)}}),
        ("deep_unary", "POST", {"url": "/api/v1/query", "data": {"query": "-" * 30_000 + "1"}}),
        ("deep_calls", "POST", {"url": "/api/v1/query", "data": {"query": _deep("abs(", ")", 30_000)}}),
        ("long_chain", "POST", {"url": "/api/v1/query", "data": {"query": " + ".join(["up"] * 20_000)}}),
        (
            "tiny_step_subquery",
            "GET",
            {"url": "/api/v1/query", "params": {"query": "max_over_time(vector(1)[30d:1ms])"}},
        ),
        ("regex_bomb", "GET", {"url": "/api/v1/query", "params": {"query": regex_bomb}}),
        ("format_deep", "POST", {"url": "/api/v1/format_query", "data": {"query": _deep("(", ")", 30_000)}}),
        ("time_1e20", "GET", {"url": "/api/v1/query", "params": {"query": "1", "time": "1e20"}}),
        (
            "step_inf",
            "GET",
            {
                "url": "/api/v1/query_range",
                "params": {"query": "1", "start": "0", "end": "1e20", "step": "Inf"},
            },
        ),
        (
            "start_nan",
            "GET",
            {"url": "/api/v1/query_range", "params": {"query": "1", "start": "NaN", "end": "1", "step": "1"}},
        ),
        ("at_huge", "GET", {"url": "/api/v1/query", "params": {"query": "vector(1) @ 1e20"}}),
        ("write_zeros", "POST", {"url": "/api/v1/write", "content": zeros, "headers": WRITE_HEADERS}),
        (
            "write_huge_claim",
            "POST",
            {"url": "/api/v1/write", "content": huge_claim, "headers": WRITE_HEADERS},
        ),
        ("write_garbage", "POST", {"url": "/api/v1/write", "content": garbage, "headers": WRITE_HEADERS}),
    ]
    return requests


@dataclass
class Tally:
    """What one target's clients saw; appended to from several threads (list.append is atomic)."""

    ordinary_ms: list[float] = field(default_factory=list)
    ordinary_errors: list[str] = field(default_factory=list)
    healthy_ms: list[float] = field(default_factory=list)
    healthy_failures: int = 0
    hostile: Counter[str] = field(default_factory=Counter)
    hostile_by_name: dict[str, Counter[str]] = field(default_factory=dict)
    ingest_requests: int = 0
    ingest_errors: int = 0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


@dataclass
class Target:
    name: str
    base: str
    proc: subprocess.Popen[bytes]
    peak_rss_mb: float = 0.0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sample_rss(self) -> None:
        rss = _peak_rss_mb(self.proc.pid)
        if not math.isnan(rss):
            self.peak_rss_mb = max(self.peak_rss_mb, rss)


@contextmanager
def _started(
    args: list[str], base: str, log: Path, env: dict[str, str] | None = None, max_address_space: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    def limit() -> None:
        if max_address_space:
            resource.setrlimit(resource.RLIMIT_AS, (max_address_space, max_address_space))

    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=limit)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def infersight(root: Path) -> Iterator[Target]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "infersight.cli", "server", "--data", str(root / "data")]
    args += ["--listen", f"127.0.0.1:{port}", "--log-level", "WARNING"]
    env = {
        **os.environ,
        "INFERSIGHT_ADMIN_KEY": os.environ.get("INFERSIGHT_ADMIN_KEY", "soak-bench-admin-key-0000"),
    }
    with _started(args, base, root / "infersight.log", env) as proc:
        yield Target("infersight", base, proc)


@contextmanager
def prometheus(root: Path) -> Iterator[Target]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (root / "prometheus.yml").write_text("global: {scrape_interval: 1h}\n")
    args = [
        "prometheus",
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
    ]
    # Its address space is capped: the deep queries grew it past 18 GB, which takes the machine (and
    # every other process on it) down with it; capped, it fails its own allocations instead.
    with _started(args, base, root / "prometheus.log", max_address_space=PEER_ADDRESS_SPACE) as proc:
        yield Target("prometheus", base, proc)


def _backfill(client: httpx.Client, base: str, now_ms: int) -> None:
    for pod in range(PODS):
        series = _pod_series(pod)
        batch = []
        for step in range(BACKFILL_S // 10):
            ts = now_ms - BACKFILL_S * 1000 + step * 10_000
            batch.extend(_points(series, ts, step))
        merged: dict[tuple, tuple[dict[str, str], list]] = {}
        for labels, points in batch:
            key = tuple(sorted(labels.items()))
            merged.setdefault(key, (labels, []))[1].extend(points)
        response = client.post(
            f"{base}/api/v1/write", content=encode_write_request(list(merged.values())), headers=WRITE_HEADERS
        )
        response.raise_for_status()


def _loop(stop: threading.Event, body: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            body()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def soak(target: Target, duration_s: float, hostile_workers: int) -> Tally:
    tally = Tally()
    stop = threading.Event()
    k0 = BACKFILL_S // 10
    with httpx.Client(timeout=30) as setup:
        _backfill(setup, target.base, int(time.time() * 1000))

    ingest_client = httpx.Client(timeout=30)
    tick = {"k": k0}

    def ingest() -> None:
        started = time.monotonic()
        tick["k"] += 1
        now_ms = int(time.time() * 1000)
        for pod in range(PODS):
            body = encode_write_request(_points(_pod_series(pod), now_ms, tick["k"]))
            try:
                response = ingest_client.post(
                    f"{target.base}/api/v1/write", content=body, headers=WRITE_HEADERS
                )
                tally.ingest_requests += 1
                if response.status_code >= 300:
                    tally.ingest_errors += 1
            except httpx.HTTPError:
                tally.ingest_requests += 1
                tally.ingest_errors += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    def ordinary_client() -> Callable[[], None]:
        client = httpx.Client(timeout=30)
        rng = random.Random(threading.get_ident())

        def once() -> None:
            now = time.time()
            choice = rng.random()
            if choice < 0.5:
                request = (
                    "GET",
                    "/api/v1/query_range",
                    {"query": rng.choice(ORDINARY_RANGE), "start": now - 900, "end": now, "step": 15},
                )
            elif choice < 0.8:
                request = ("GET", "/api/v1/query", {"query": rng.choice(ORDINARY_INSTANT), "time": now})
            else:
                request = ("GET", "/api/v1/label/source/values", {})
            began = time.perf_counter()
            try:
                response = client.request(request[0], target.base + request[1], params=request[2])
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200 or response.json().get("status") != "success":
                    tally.ordinary_errors.append(f"{request[1]} {response.status_code} {response.text[:120]}")
                else:
                    tally.ordinary_ms.append(elapsed)
            except (httpx.HTTPError, ValueError) as err:
                tally.ordinary_errors.append(f"{request[1]} {type(err).__name__}")
            began = time.perf_counter()
            try:
                if client.get(f"{target.base}/-/healthy").status_code == 200:
                    tally.healthy_ms.append((time.perf_counter() - began) * 1000)
                else:
                    tally.healthy_failures += 1
            except httpx.HTTPError:
                tally.healthy_failures += 1

        return once

    def hostile_client(offset: int) -> Callable[[], None]:
        client = httpx.Client(timeout=30)
        requests = hostile_requests()
        index = {"i": offset}

        def once() -> None:
            name, method, kwargs = requests[index["i"] % len(requests)]
            index["i"] += 1
            kwargs = {**kwargs, "url": target.base + kwargs["url"]}
            try:
                status = client.request(method, **kwargs).status_code
                outcome = f"{status // 100}xx"
            except httpx.TimeoutException:
                outcome = "client_timeout"
            except httpx.HTTPError:
                outcome = "connection_failed"
                time.sleep(0.2)
            tally.hostile[outcome] += 1
            tally.hostile_by_name.setdefault(name, Counter())[outcome] += 1

        return once

    def load_process(results: multiprocessing.Queue) -> None:
        """Ingest and the hostile clients, in a process of their own: their threads would otherwise
        share the ordinary clients' interpreter lock and add its waits to the latencies measured."""
        threads = [_loop(stop, ingest)]
        threads += [_loop(stop, hostile_client(i * 3)) for i in range(hostile_workers)]
        time.sleep(duration_s)
        stop.set()
        for thread in threads:
            thread.join(timeout=35)
        ingest_client.close()
        by_name = {name: dict(outcomes) for name, outcomes in tally.hostile_by_name.items()}
        results.put((tally.ingest_requests, tally.ingest_errors, dict(tally.hostile), by_name))

    results: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    loader = multiprocessing.get_context("fork").Process(target=load_process, args=(results,), daemon=True)
    loader.start()
    threads = [_loop(stop, ordinary_client()) for _ in range(2)]
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline and target.alive():
        target.sample_rss()
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=35)
    target.sample_rss()
    ingest_requests, ingest_errors, hostile, by_name = results.get(timeout=120)
    loader.join(timeout=30)
    tally.ingest_requests, tally.ingest_errors = ingest_requests, ingest_errors
    tally.hostile = Counter(hostile)
    tally.hostile_by_name = {name: Counter(outcomes) for name, outcomes in by_name.items()}
    return tally


def figures(target: Target, tally: Tally) -> dict[str, float | int | bool]:
    stayed_up = target.alive()
    if stayed_up:
        try:
            stayed_up = httpx.get(f"{target.base}/-/healthy", timeout=10).status_code == 200
        except httpx.HTTPError:
            stayed_up = False
    name = target.name
    return {
        f"{name}_stayed_up": stayed_up,
        f"{name}_ordinary_requests": len(tally.ordinary_ms) + len(tally.ordinary_errors),
        f"{name}_ordinary_errors": len(tally.ordinary_errors),
        f"{name}_ordinary_p50_ms": round(_pct(tally.ordinary_ms, 0.5), 2),
        f"{name}_ordinary_p99_ms": round(_pct(tally.ordinary_ms, 0.99), 2),
        f"{name}_ordinary_max_ms": round(max(tally.ordinary_ms, default=math.nan), 2),
        f"{name}_healthy_p99_ms": round(_pct(tally.healthy_ms, 0.99), 2),
        f"{name}_healthy_failures": tally.healthy_failures,
        f"{name}_hostile_requests": sum(tally.hostile.values()),
        f"{name}_hostile_4xx": tally.hostile["4xx"],
        f"{name}_hostile_5xx": tally.hostile["5xx"],
        f"{name}_hostile_2xx": tally.hostile["2xx"],
        f"{name}_hostile_client_timeouts": tally.hostile["client_timeout"],
        f"{name}_hostile_connection_failures": tally.hostile["connection_failed"],
        f"{name}_ingest_requests": tally.ingest_requests,
        f"{name}_ingest_errors": tally.ingest_errors,
        f"{name}_peak_rss_mb": round(target.peak_rss_mb, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s per target instead of 120 s")
    parser.add_argument("--duration-s", type=float, default=None)
    parser.add_argument("--hostile-workers", type=int, default=10)
    parser.add_argument("--only", choices=["infersight", "prometheus"], default=None)
    args = parser.parse_args(argv)
    duration = args.duration_s or (20.0 if args.quick else 120.0)
    out: dict[str, float | int | bool | str] = {
        "duration_s": duration,
        "hostile_workers": args.hostile_workers,
    }
    starters = {"infersight": infersight, "prometheus": prometheus}
    with tempfile.TemporaryDirectory(prefix="infersight-soak-") as tmp:
        for name, start in starters.items():
            if args.only and name != args.only:
                continue
            root = Path(tmp) / name
            root.mkdir()
            with start(root) as target:
                tally = soak(target, duration, args.hostile_workers)
                result = figures(target, tally)
            print(f"{name}: {json.dumps(result)}", flush=True)  # noqa: T201
            for hostile_name, outcomes in sorted(tally.hostile_by_name.items()):
                print(f"  {name} {hostile_name}: {dict(outcomes)}", flush=True)  # noqa: T201
            for error in tally.ordinary_errors[:5]:
                print(f"  {name} ordinary error: {error}", flush=True)  # noqa: T201
            out.update(result)
    print(json.dumps(out), flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
