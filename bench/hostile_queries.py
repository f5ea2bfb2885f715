"""Latency of a simple query and of ``/-/healthy`` while hostile queries hammer the server.

Run: ``python -m bench.hostile_queries [--quick] [--hostile 10] [--probes 300] [--heavy-timeout-s 5]``.
The server (``create_app`` over a fresh chDB store with a few series, served by uvicorn) runs in a
process of its own; this process runs ``--hostile`` client threads, each sending one hostile query
after another (nesting far past the limits, ``[30d:1ms]``, a catastrophic regex in
``label_replace``, ``format_query`` at the nesting limit, a chain at the operator limit, and a
legal query heavy enough to run until its ``timeout``), and one probe thread that alternates a
simple instant query and ``/-/healthy``, timing each. The peer, Prometheus 2.42 with the same
series (remote-written) and its address space capped as in ``bench.soak``, gets the same load in
the same run. Ends with one line of JSON: per system the probes' p50/p99/max in ms, failed probes,
whether it was still up, and how the hostile requests were answered (status counts).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.soak import prometheus
from query.api.remote_write import encode_write_request

_SERVER = """
import sys, uvicorn
from model.labels import to_labels
from model.series import Sample
from query.api.app import create_app
from store.open import open_store

store = open_store("chdb://" + sys.argv[1])
store.writer.write([
    Sample(to_labels({"__name__": "up", "job": f"j{j}"}), (1_700_000_000 + 10 * i) * 1000, 1.0)
    for i in range(360) for j in range(20)
])
uvicorn.run(create_app(store), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _hostile(heavy_timeout_s: float) -> list[tuple[str, dict[str, str]]]:
    deep = "(" * 50_000 + "1" + ")" * 50_000
    long_value = "a" * 5000 + "c"
    with_src = f'label_replace(vector(1), "src", "{long_value}", "", "")'
    regex = f'label_replace({with_src}, "d", "x", "src", "(a+)+b")'
    return [
        ("/api/v1/query", {"query": deep}),
        ("/api/v1/query", {"query": "max_over_time(vector(1)[30d:1ms])", "time": "1700000000"}),
        ("/api/v1/query", {"query": regex}),
        ("/api/v1/format_query", {"query": "abs(" * 127 + "up" + ")" * 127}),
        ("/api/v1/query", {"query": " + ".join(["up"] * 257), "time": "1700003000"}),
        (
            "/api/v1/query_range",
            {
                "query": "quantile_over_time(0.5, vector(1)[1d:10s])",
                "start": "0",
                "end": "600000",
                "step": "60",
                "timeout": f"{round(heavy_timeout_s * 1000)}ms",
            },
        ),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}/-/healthy", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 probes instead of 300")
    parser.add_argument("--hostile", type=int, default=10, help="hostile client threads")
    parser.add_argument("--probes", type=int, default=300, help="simple queries (and as many /-/healthy)")
    parser.add_argument("--heavy-timeout-s", type=float, default=5.0)
    parser.add_argument("--only", type=int, help="send only this one of the hostile queries (0-based)")
    parser.add_argument("--no-peer", action="store_true", help="infersight only")
    args = parser.parse_args()
    if args.quick:
        args.probes = min(args.probes, 100)
    out: dict[str, object] = {"hostile_clients": args.hostile, "probes": args.probes}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(Path(data) / "data"), str(port)],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        try:
            _wait_healthy(url)
            out.update(_prefixed("infersight", _run(url, args, lambda: server.poll() is None)))
        finally:
            server.terminate()
            server.wait(30)
        if not args.no_peer:
            peer_root = Path(data) / "prometheus"
            peer_root.mkdir()
            with prometheus(peer_root) as peer:
                _load_peer(peer.base)
                out.update(_prefixed("prometheus", _run(peer.base, args, peer.alive)))
    print(json.dumps(out))  # noqa: T201 - the benchmark's one line of output


def _prefixed(name: str, figures: dict[str, object]) -> dict[str, object]:
    return {f"{name}_{key}": value for key, value in figures.items()}


def _load_peer(base: str) -> None:
    """The series the infersight server writes at its start, remote-written to the peer."""
    series = [
        ({"__name__": "up", "job": f"j{j}"}, [((1_700_000_000 + 10 * i) * 1000, 1.0) for i in range(360)])
        for j in range(20)
    ]
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    response = httpx.post(f"{base}/api/v1/write", content=encode_write_request(series), headers=headers)
    response.raise_for_status()


def _run(url: str, args: argparse.Namespace, alive: Callable[[], bool]) -> dict[str, object]:
    hostile = _hostile(args.heavy_timeout_s)
    if args.only is not None:
        hostile = hostile[args.only : args.only + 1]
    stop = threading.Event()
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def attack(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            i = offset
            while not stop.is_set():
                path, params = hostile[i % len(hostile)]
                try:
                    status = str(client.post(path, data=params).status_code)
                except httpx.HTTPError as err:
                    status = type(err).__name__
                    time.sleep(0.2)
                with lock:
                    answers[f"{path} {status}"] += 1
                i += 1

    threads = [threading.Thread(target=attack, args=(i,), daemon=True) for i in range(args.hostile)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # let the heavy ones start
    query_ms: list[float] = []
    healthy_ms: list[float] = []
    failures = 0
    with httpx.Client(base_url=url, timeout=120) as probe:
        for _ in range(args.probes):
            try:
                started = time.perf_counter()
                response = probe.get("/api/v1/query", params={"query": "up", "time": "1700003000"})
                query_ms.append((time.perf_counter() - started) * 1000)
                failures += response.status_code != 200
                started = time.perf_counter()
                failures += probe.get("/-/healthy").status_code != 200
                healthy_ms.append((time.perf_counter() - started) * 1000)
            except httpx.HTTPError:
                failures += 1
                time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=35)
    return {
        "stayed_up": alive(),
        "probe_failures": failures,
        "query_p50_ms": round(_percentile(query_ms, 0.5), 1),
        "query_p99_ms": round(_percentile(query_ms, 0.99), 1),
        "query_max_ms": round(max(query_ms, default=math.nan), 1),
        "healthy_p50_ms": round(_percentile(healthy_ms, 0.5), 1),
        "healthy_p99_ms": round(_percentile(healthy_ms, 0.99), 1),
        "hostile_answers": dict(sorted(answers.items())),
    }


if __name__ == "__main__":
    main()
