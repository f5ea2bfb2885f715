"""Memory and CPU of one sidecar process: scraping every 10 s, idle, then proxying 50 req/s.

Run: ``python -m bench.footprint [--quick]``. The sidecar under test is a child process running
what ``infersight sidecar`` runs next to an engine: the scrape loop (every 10 s), the ingress
proxy, the resource reader (every 10 s) and the own ``/metrics`` exposition, all in one event
loop, handing batches to a sink that drops them (shipping is measured by bench.ingest). The
engine is the simulator in its own process. CPU = (utime + stime) of the child over the window
/ the window; RSS from /proc/<pid>/status (VmRSS at the end, VmHWM the peak). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

from bench.proxy import _free_port, _process

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SIM_ARGS = ["--ttft-median-ms", "40", "--itl-median-ms", "8", "--output-tokens-max", "16", "--seed", "2"]
BODY = {"model": "sim-model", "messages": [{"role": "user", "content": "hello there"}], "stream": True}


async def _child(sim_port: int, proxy_port: int, metrics_port: int) -> None:
    """The sidecar under test (runs in the child process)."""
    from collector.config import ProxyConfig, ResourcesConfig, ScrapeConfig, TargetConfig
    from collector.exposition import Exposition
    from collector.proxy import IngressProxy
    from collector.resources import ResourceReader
    from collector.sidecar import Sidecar

    sink = Exposition()  # keeps the latest values; nothing further
    identity = {"service_id": "bench", "source": "pod-0"}
    target = TargetConfig(
        host="127.0.0.1", port=sim_port, engine="vllm", allowed_ports=(sim_port,), **identity
    )
    sidecar = Sidecar(ScrapeConfig(interval_s=10, timeout_s=5), target, sink)
    proxy = IngressProxy(
        ProxyConfig(listen=f"127.0.0.1:{proxy_port}", upstream=f"http://127.0.0.1:{sim_port}"), identity, sink
    )
    resources = ResourceReader(ResourcesConfig(interval_s=10), identity, sink)
    await proxy.start()
    await sink.start("127.0.0.1", metrics_port)
    resources.start()
    await sidecar.run()


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime


def _rss_mb(pid: int) -> tuple[float, float]:
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def _drive(url: str, rate_per_s: float, duration_s: float) -> int:
    """Open-loop streamed requests at ``rate_per_s``; returns how many completed."""
    done = 0

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal done
        async with client.stream("POST", url, json=BODY) as response:
            async for _ in response.aiter_raw():
                pass
        done += 1

    async with httpx.AsyncClient(
        timeout=30, trust_env=False, limits=httpx.Limits(max_connections=200)
    ) as client:
        tasks = []
        start = time.perf_counter()
        for i in range(int(rate_per_s * duration_s)):
            await asyncio.sleep(max(0.0, start + i / rate_per_s - time.perf_counter()))
            tasks.append(asyncio.create_task(one(client)))
        await asyncio.gather(*tasks, return_exceptions=True)
    return done


def _idle_cpu(pid: int, seconds: float) -> float:
    before, t0 = _cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_s(pid) - before) / (time.monotonic() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(*args.child))
        return
    idle_s, load_s = (20.0, 15.0) if args.quick else (60.0, 60.0)
    sim_port, proxy_port, metrics_port = _free_port(), _free_port(), _free_port()
    with (
        _process(["-m", "simulator", "--port", str(sim_port), *SIM_ARGS], sim_port),
        _process(
            ["-m", "bench.footprint", "--child", str(sim_port), str(proxy_port), str(metrics_port)],
            proxy_port,
        ) as child,
    ):
        time.sleep(2.0)  # let start-up work settle
        idle_cpu = _idle_cpu(child.pid, idle_s)  # two or more scrapes and resource reads fall inside
        url = f"http://127.0.0.1:{proxy_port}/v1/chat/completions"
        before, t0 = _cpu_s(child.pid), time.monotonic()
        completed = asyncio.run(_drive(url, 50.0, load_s))
        load_cpu = (_cpu_s(child.pid) - before) / (time.monotonic() - t0)
        rss, peak = _rss_mb(child.pid)
    figures = {
        "rss_mb": round(rss, 1),
        "rss_peak_mb": round(peak, 1),
        "cpu_core_fraction_idle_scrape": round(idle_cpu, 4),
        "cpu_core_fraction_at_50_req_per_s": round(load_cpu, 4),
        "requests_completed": completed,
        "idle_window_s": idle_s,
        "load_window_s": load_s,
    }
    print(json.dumps(figures))  # noqa: T201 - the benchmark's result line
    sys.stdout.flush()


if __name__ == "__main__":
    main()
