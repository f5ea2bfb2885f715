"""Added TTFT and throughput of streamed requests through the ingress proxy, against direct.

Run: ``python -m bench.proxy [--quick]``. Three processes: the simulator (a fake vLLM engine),
the proxy (``python -m collector.proxy``) in front of it, and this load generator. At 1, 50 and
200 concurrent streams, each stream sends streamed chat requests back to back for a fixed time,
first straight to the simulator, then through the proxy; the client measures TTFT (to the first
chunk with generated text) and counts completed requests. Added TTFT = proxy percentile - direct
percentile; throughput ratio = proxied requests/s / direct requests/s. ``cN_proxy_cpu_ms_per_req``
is the proxy process's CPU time (user + system) per completed request: the proxy's own cost, which
the machine's other load changes less than it changes latencies (``cN_sim_…`` and ``cN_client_…``
give the simulator's and the load generator's, from the direct run, for scale). ``--streams 1,50``
runs only those levels. Ends with one JSON line.

On a shared 2-core machine the load generator, proxy and simulator compete for CPU: at 200
streams the figures include that contention (the proxy costs CPU the simulator then lacks), and
the load generator (httpx) is itself the bottleneck there (~15-18 ms of CPU per request), so direct
TTFTs are seconds and the added TTFT at 200 streams is noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

BODY = {
    "model": "sim-model",
    "messages": [{"role": "user", "content": "tell me a story"}],
    "stream": True,
    "max_tokens": 16,
}
# fixed delays (sigma 0): the TTFT percentiles of two runs then differ by the proxy, not by the draw;
# ~0.7 s per request keeps 200 streams at ~285 req/s
SIM_ARGS = [
    *("--ttft-median-ms", "100", "--ttft-sigma", "0", "--itl-median-ms", "40", "--itl-sigma", "0"),
    *("--output-tokens-min", "16", "--output-tokens-max", "16", "--max-num-seqs", "1024", "--seed", "1"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout_s}s")


@contextmanager
def _process(args: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


ERRORS: list[str] = []


async def _stream_once(client: httpx.AsyncClient, url: str, ttfts: list[float]) -> None:
    t0 = time.perf_counter()
    first = None
    try:
        async with client.stream("POST", url, json=BODY) as response:
            async for part in response.aiter_raw():
                if first is None and b'"content":"' in part.replace(b'"content":""', b""):
                    first = time.perf_counter() - t0
    except httpx.HTTPError as exc:  # counted and reported, the run goes on
        ERRORS.append(type(exc).__name__)
        return
    if first is not None:
        ttfts.append(first * 1000)


async def _load(url: str, streams: int, duration_s: float) -> tuple[list[float], float]:
    """(TTFTs in ms, completed requests per second) of ``streams`` back-to-back loops."""
    ttfts: list[float] = []
    limits = httpx.Limits(max_connections=streams + 8, max_keepalive_connections=streams + 8)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
        await _stream_once(client, url, [])  # warm the connection pool
        deadline = time.perf_counter() + duration_s
        start = time.perf_counter()

        async def loop() -> None:
            while time.perf_counter() < deadline:
                await _stream_once(client, url, ttfts)

        await asyncio.gather(*(loop() for _ in range(streams)))
        elapsed = time.perf_counter() - start
    return ttfts, len(ttfts) / elapsed


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(
    url: str, streams: int, duration_s: float, pids: dict[str, int]
) -> tuple[list[float], float, dict[str, float]]:
    """``_load`` plus the CPU ms per completed request of each process in ``pids`` (and the client)."""
    before = {name: _cpu_s(pid) for name, pid in pids.items()}
    client_before = time.process_time()
    ttfts, rps = asyncio.run(_load(url, streams, duration_s))
    cpu = {name: _cpu_s(pid) - before[name] for name, pid in pids.items()}
    cpu["client"] = time.process_time() - client_before
    done = max(1, len(ttfts))
    return ttfts, rps, {name: 1000 * seconds / done for name, seconds in cpu.items()}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="4 s per run instead of 20 s")
    parser.add_argument(
        "--streams", type=lambda v: [int(n) for n in v.split(",")], default=[1, 50, 200],
        help="concurrency levels, comma-separated (default 1,50,200)",
    )  # fmt: skip
    args = parser.parse_args()
    duration_s = 4.0 if args.quick else 20.0
    sim_port, proxy_port = _free_port(), _free_port()
    figures: dict[str, float] = {}
    path = "/v1/chat/completions"
    with (
        _process(["-m", "simulator", "--port", str(sim_port), *SIM_ARGS], sim_port) as sim,
        _process(
            ["-m", "collector.proxy", "--listen", f"127.0.0.1:{proxy_port}",
             "--upstream", f"http://127.0.0.1:{sim_port}"],
            proxy_port,
        ) as proxy,
    ):  # fmt: skip
        for streams in args.streams:
            pids = {"sim": sim.pid, "proxy": proxy.pid}
            direct, direct_rps, direct_cpu = _measured(
                f"http://127.0.0.1:{sim_port}{path}", streams, duration_s, pids
            )
            proxied, proxied_rps, proxied_cpu = _measured(
                f"http://127.0.0.1:{proxy_port}{path}", streams, duration_s, pids
            )
            figures[f"c{streams}_direct_ttft_p50_ms"] = round(_pct(direct, 0.5), 3)
            figures[f"c{streams}_added_ttft_p50_ms"] = round(_pct(proxied, 0.5) - _pct(direct, 0.5), 3)
            figures[f"c{streams}_added_ttft_p99_ms"] = round(_pct(proxied, 0.99) - _pct(direct, 0.99), 3)
            figures[f"c{streams}_direct_req_per_s"] = round(direct_rps, 1)
            figures[f"c{streams}_throughput_ratio_vs_direct"] = round(proxied_rps / direct_rps, 3)
            # CPU per completed request: the proxy's own cost, whatever the machine's contention
            figures[f"c{streams}_proxy_cpu_ms_per_req"] = round(proxied_cpu["proxy"], 3)
            figures[f"c{streams}_sim_cpu_ms_per_req"] = round(direct_cpu["sim"], 3)
            figures[f"c{streams}_client_cpu_ms_per_req"] = round(direct_cpu["client"], 3)
    figures["added_ttft_p99_ms"] = max(v for k, v in figures.items() if k.endswith("added_ttft_p99_ms"))
    figures["throughput_ratio_vs_direct"] = min(
        v for k, v in figures.items() if k.endswith("ratio_vs_direct")
    )
    figures["duration_s_per_run"] = duration_s
    figures["client_errors"] = len(ERRORS)
    print(json.dumps(figures))  # noqa: T201 - the benchmark's result line


if __name__ == "__main__":
    main()
