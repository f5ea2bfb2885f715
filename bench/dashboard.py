"""Grafana refreshes of the generated dashboards: infersight against Prometheus 2.42 and VictoriaMetrics 1.79.

Run: ``python -m bench.dashboard [--quick] [--services N] [--spans 15m,1h,...] [--rounds R] [--no-live]``.
Every dashboard of ``dashboards/json`` is refreshed as Grafana does it: first its variable queries
(``label_values(selector, label)`` as ``/api/v1/label/<label>/values?match[]=``), then every panel
query exactly as the JSON has it, variables filled in (one service chosen, the rest "All" =
``.*``, ``$period`` 1m, ``$__range`` the span), 6 requests at a time as a browser sends them, through
``bench.browser``'s client (keep-alive connections on one event loop, whose own cost, measured
against a server that answers at once, is reported as ``client_floor_median_refresh_s``).
The data ends at the time the run starts, and while refreshes are timed the scrapes go on
(``LiveScrapes``: every 10 s each series' next point is remote-written to every system) and each
refresh asks for the window ending then, as Grafana's does (``--no-live``: neither). So result caches
(ours and VictoriaMetrics' hold nothing newer than 5 minutes) compute each refresh's newest steps,
and whatever a server keys on its data meets writes, as in use.
The step is Grafana's: the span over a 1,000-pixel panel rounded to its nice intervals, at least
the scrape interval (the data source's min interval), times the target's ``intervalFactor``; start
and end aligned down to the step. The same data (``dashboard_data``) is in each system: infersight
(chDB, in a process of its own served as ``infersight server`` serves: ``InLoopServer``),
Prometheus (remote write in time order) and VictoriaMetrics (text import; timed with its result
cache off, ``nocache=1``, and on). Every infersight answer is checked against Prometheus's (same
series, values within 1e-6 relative); a mismatch is printed and counted.

For experiments, ``BENCH_MAX_CONCURRENT`` (the engine's query threads) and ``BENCH_SWITCH_S``
(Python's switch interval) in the environment change how infersight's server runs.

Figures: per span and system the median time of one dashboard refresh (over dashboards and
rounds, the systems taking turns, after one untimed round), and 20 service dashboards (different
services) refreshing at once at the 1-hour span: the time until all are done, and the CPU the
server used meanwhile. The timed rounds follow one another closely, so each refresh comes seconds
after the last one of its dashboard, with little new since; Grafana refreshes every minute. So
then (unless ``--later-s 0``, the default with ``--quick``) the scrapes go on for ``--later-s``
(60 s) and every dashboard is refreshed once more per span and system: ``*_later_*`` figures,
the refresh a minute later, whose newest minute no cache holds. Ends with one line of JSON.

The issue's full size (100 services x 4 pods at a 10 s scrape for 15 days: 36 k series, 4.7 G
points) does not fit this 2-core machine; the default is 100 x 4 over the longest span asked
(``--spans``, default up to 24 h) and ``--quick`` is 10 services over 6 h.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvloop

from bench import peers
from bench.browser import Browser, Response, answer_at_once
from bench.dashboard_data import (
    DashboardData,
    generate,
    live_scrapes,
    prometheus_text_chunks,
    remote_write_bodies,
    write_store,
)

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards" / "json"
SPANS_S = {"15m": 900, "1h": 3600, "6h": 21_600, "24h": 86_400, "7d": 604_800, "15d": 1_296_000}
PIXELS = 1000
PARALLEL = 6  # a browser's connections per host
# Grafana's rangeutil.roundInterval: (below this many ms, use this interval).
_NICE_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000),
    (7500, 5000), (12500, 10_000), (17500, 15_000), (25000, 20_000), (45000, 30_000), (90000, 60_000),
    (210_000, 120_000), (450_000, 300_000), (1_050_000, 600_000), (2_100_000, 1_200_000),
    (5_400_000, 1_800_000), (9_000_000, 3_600_000), (16_200_000, 7_200_000), (32_400_000, 10_800_000),
    (86_400_000, 21_600_000), (604_800_000, 86_400_000), (1_814_400_000, 604_800_000),
)  # fmt: skip
# The benchmark's one event loop: every browser's connections live on it.
LOOP = uvloop.new_event_loop()
_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)$", re.S)


def _say(message: str) -> None:
    sys.stderr.write(f"[bench.dashboard] {message}\n")
    sys.stderr.flush()


def round_interval_ms(ms: float) -> int:
    for below, nice in _NICE_MS:
        if ms < below:
            return nice
    return 31_536_000_000


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP GET a refresh sends: path and parameters."""

    path: str
    params: tuple[tuple[str, str], ...]


def _fill(text: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return text


def refresh_requests(
    dashboard: dict[str, Any], span_s: int, end_s: int, scrape_s: int, service: str
) -> list[Request]:
    """The requests of one refresh of ``dashboard`` over the last ``span_s`` before ``end_s``."""
    start_s = end_s - span_s
    chosen: dict[str, str] = {"__range": f"{span_s}s", "__range_s": str(span_s)}
    variables = []
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            variables.append(var)
            chosen[var["name"]] = service if var["name"] == "service_id" else var.get("allValue") or ".*"
            if var["name"] == "metric":
                chosen["metric"] = var["current"]["value"]
        elif var.get("type") in ("custom", "interval"):
            chosen[var["name"]] = var["current"]["value"]
    out = []
    for var in variables:
        found = _LABEL_VALUES.match(_fill(var["query"], chosen).strip())
        if not found:
            continue
        selector, label = found.groups()
        params = [("start", str(start_s)), ("end", str(end_s))]
        if selector:
            params.append(("match[]", selector))
        out.append(Request(f"/api/v1/label/{label}/values", tuple(params)))
    base_ms = max(round_interval_ms(span_s * 1000 / PIXELS), scrape_s * 1000)
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets") or []:
            if target.get("hide"):
                continue
            step_s = max(base_ms * int(target.get("intervalFactor") or 1) // 1000, scrape_s)
            step_s = max(step_s, math.ceil(span_s / 11_000))
            local = chosen | {
                "__interval": f"{step_s}s",
                "__interval_ms": str(step_s * 1000),
                "__rate_interval": f"{max(step_s + scrape_s, 4 * scrape_s)}s",
            }
            query = _fill(target["expr"], local)
            params = (
                ("query", query),
                ("start", str(start_s // step_s * step_s)),
                ("end", str(end_s // step_s * step_s)),
                ("step", str(step_s)),
            )
            out.append(Request("/api/v1/query_range", params))
    return out


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


class System:
    """A system under test: a base URL, extra parameters for every request, a browser's connections."""

    def __init__(self, name: str, base: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.name = name
        self.base = base
        self.extra = extra
        self.client = Browser(base, PARALLEL)

    def browser(self) -> System:
        """Another browser on the same system: connections of its own."""
        return System(self.name, self.base, self.extra)

    async def get(self, request: Request) -> Response:
        return await self.client.get(request.path, request.params + self.extra)


async def refresh(system: System, requests: list[Request]) -> tuple[float, list[Response]]:
    """Variable queries first (Grafana needs their answers), then the panels; 6 at a time (the
    browser's connections). Timed until the last answer's last byte: decoding is the reader's."""
    started = time.perf_counter()
    variables = [r for r in requests if r.path != "/api/v1/query_range"]
    panels = [r for r in requests if r.path == "/api/v1/query_range"]
    answers = list(await asyncio.gather(*map(system.get, variables)))
    answers += await asyncio.gather(*map(system.get, panels))
    return time.perf_counter() - started, answers


def _canonical(answer: Response) -> Any:
    body = answer.json()
    if body.get("status") != "success":
        return ("error", body.get("errorType"))
    data = body["data"]
    if isinstance(data, list):
        return sorted(data)
    return {tuple(sorted(s["metric"].items())): s["values"] for s in data["result"]}


def same_answer(ours: Response, theirs: Response) -> bool:
    a, b = _canonical(ours), _canonical(theirs)
    if not isinstance(a, dict) or not isinstance(b, dict):
        return a == b
    if a.keys() != b.keys():
        return False
    for key, points in a.items():
        other = b[key]
        if len(points) != len(other):
            return False
        for (t1, v1), (t2, v2) in zip(points, other, strict=True):
            x, y = float(v1), float(v2)
            if t1 != t2 or not (
                x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-6 * max(abs(x), abs(y))
            ):
                return False
    return True


# -- infersight in a process of its own ---------------------------------------------------------------


def serve(path: str, port: int) -> None:
    """The server process: the store at ``path`` behind the full app, served as ``infersight server``
    serves it (``InLoopServer``: its event loop, garbage-collector tuning, 75 s keep-alive, backlog)."""
    from collector.serve import InLoopServer, run_until_signal
    from query.api.app import create_app
    from store.open import open_store

    store = open_store(f"chdb://{path}")
    engine = None
    if os.environ.get("BENCH_MAX_CONCURRENT"):  # for experiments: Prometheus' --query.max-concurrency
        from query.api.app import build_querier
        from query.promql.engine import Engine

        engine = Engine(build_querier(store), max_concurrent=int(os.environ["BENCH_MAX_CONCURRENT"]))

    async def run(stop: asyncio.Event) -> None:
        if os.environ.get("BENCH_SWITCH_S"):
            sys.setswitchinterval(float(os.environ["BENCH_SWITCH_S"]))
        server = InLoopServer(create_app(store, engine), "127.0.0.1", port)
        await server.start()
        await stop.wait()
        await server.stop()

    run_until_signal(run)


@contextmanager
def infersight(root: Path, data: DashboardData, out: dict[str, Any]) -> Iterator[tuple[str, int]]:
    from store.open import open_store

    started = time.perf_counter()
    store = open_store(f"chdb://{root / 'chdb'}")
    try:
        write_store(data, store.writer)
    finally:
        store.close()
    out["load_infersight_s"] = round(time.perf_counter() - started, 1)
    port = peers.free_port()
    log = root / "infersight.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.dashboard", "--serve", str(root / "chdb"), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            peers._wait_ready(base, "infersight", log)
            peers.PIDS[base] = proc.pid
            yield base, proc.pid
        finally:
            if proc.poll() is not None:  # it ended on its own: say how, with its last words
                tail = log.read_text(errors="replace").splitlines()[-40:]
                _say(f"infersight's server exited with {proc.returncode}:\n" + "\n".join(tail))
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _prometheus(stack: ExitStack, root: Path, data: DashboardData, out: dict[str, Any]) -> str:
    base = stack.enter_context(peers.prometheus(root, root / "tsdb", "--web.enable-remote-write-receiver"))
    started = time.perf_counter()
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    with httpx.Client(timeout=600) as client:
        for body in remote_write_bodies(data):
            client.post(f"{base}/api/v1/write", content=body, headers=headers).raise_for_status()
    out["load_prometheus_s"] = round(time.perf_counter() - started, 1)
    return base


def _checked_round(
    systems: list[System],
    plans: list[list[Request]],
    check: Callable[[str, list[Response], list[Response]], None],
) -> None:
    """Each plan once per system, every answer compared with Prometheus's (and caches warmed)."""
    for plan in plans:
        answers = {s.name: LOOP.run_until_complete(refresh(s, plan))[1] for s in systems}
        for s in systems:
            check(s.name, answers[s.name], answers["prometheus"])


def _timed_rounds(
    systems: list[System],
    boards: list[dict[str, Any]],
    plan: Callable[[dict[str, Any]], list[Request]],
    rounds: int,
    warm_first: bool = True,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each dashboard's refresh ``rounds`` times per system, the systems taking turns (each
    dashboard begun by the next system); the requests made at the time of each refresh
    (``plan``: the window ends now, as Grafana's does). One round first, untimed
    (``warm_first``): a dashboard open all day was refreshed before (the uncached figures,
    ``nocache=1``, say what a first refresh costs). Also each system's server CPU per refresh
    (its threads' time during its own refreshes: a scrape written meanwhile counts too)."""
    times: dict[str, list[float]] = {s.name: [] for s in systems}
    cpu = dict.fromkeys(times, 0.0)
    for timed in [False] * warm_first + [True] * rounds:
        for k, board in enumerate(boards):
            # Each dashboard begun by another system: none always refreshes first after a pause.
            for s in systems[k % len(systems) :] + systems[: k % len(systems)]:
                pid = peers.PIDS.get(s.base)
                before = peers.cpu_seconds_exact(pid) if pid else 0.0
                seconds = LOOP.run_until_complete(refresh(s, plan(board)))[0]
                if timed:
                    times[s.name].append(seconds)
                    cpu[s.name] += (peers.cpu_seconds_exact(pid) - before) if pid else 0.0
    return times, {name: cpu[name] / max(len(times[name]), 1) for name in times}


class LiveScrapes:
    """Scrapes arriving while the dashboards refresh, as they do in use: every ``scrape_s`` the
    next point of every series is remote-written to each system. Without them no write ever
    changes what a query reads, which no server in use sees; with them, whatever a server keys on
    its data (results shared between queries, cached answers' newest steps) meets writes as in use.
    """

    def __init__(self, data: DashboardData, bases: list[str]) -> None:
        self._data = data
        self._bases = bases
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-scrapes", daemon=True)
        self._done_s = data.end_s  # scrapes up to here are written
        self.writes = 0

    def __enter__(self) -> LiveScrapes:
        now_s = int(time.time())
        self._write(self._done_s, now_s)  # the scrapes since the data was made
        self._done_s = now_s
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _write(self, from_s: int, to_s: int) -> None:
        body = live_scrapes(self._data, from_s, to_s)
        if body is None:
            return
        headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
        for base in self._bases:
            httpx.post(f"{base}/api/v1/write", content=body, headers=headers, timeout=60).raise_for_status()
        self.writes += 1

    def _run(self) -> None:
        scrape_s = self._data.scrape_s
        while not self._stop.wait(scrape_s - time.time() % scrape_s + 0.05):
            now_s = int(time.time())
            self._write(self._done_s, now_s)
            self._done_s = now_s


@dataclass(frozen=True)
class Together:
    """One refresh of many dashboards at once: wall time, and the CPU the server and the client used."""

    wall_s: float
    server_cpu_s: float
    client_cpu_s: float


def _together(system: System, plans: list[list[Request]]) -> Together:
    """All ``plans`` refreshed at once, each by a browser with its own 6 connections; until all are
    done. The server's CPU seconds are reported too: they say what the refresh costs the machine,
    whatever else (this client included) runs on its two cores."""
    browsers = [system.browser() for _ in plans]
    pid = peers.PIDS[system.base]

    async def everyone() -> None:
        await asyncio.gather(*(refresh(b, plan) for b, plan in zip(browsers, plans, strict=True)))

    try:
        server_cpu, client_cpu = peers.cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        LOOP.run_until_complete(everyone())
        wall = time.perf_counter() - started
        return Together(wall, peers.cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu)
    finally:
        for browser in browsers:
            browser.client.close()


def _client_floor(plans: list[list[Request]], rounds: int) -> float:
    """The median refresh against a server that answers at once: this client's share of every figure."""
    with answer_at_once(peers.free_port()) as base:
        system = System("answer_at_once", base)
        times = [LOOP.run_until_complete(refresh(system, plan))[0] for _ in range(rounds) for plan in plans]
        system.client.close()
    return statistics.median(times[len(plans) :])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 services, spans 15m, 1h, 6h")
    parser.add_argument("--services", type=int, default=None)
    parser.add_argument("--spans", default=None, help="comma-separated, of " + ",".join(SPANS_S))
    parser.add_argument("--scrape-s", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per span (default 3)")
    parser.add_argument(
        "--later-s",
        type=int,
        default=None,
        help="then, this long after each dashboard's last refresh, one more timed round (Grafana's "
        "refresh every minute; default 60, 0 with --quick: none)",
    )
    parser.add_argument(
        "--no-live",
        dest="live",
        action="store_false",
        help="no scrapes arriving while timing, every refresh over the same window (as before)",
    )
    parser.add_argument(
        "--profile", default=None, help="py-spy collapsed stacks (raw) of infersight's 15m refreshes"
    )
    parser.add_argument(
        "--profile-together",
        action="store_true",
        help="profile the 20 dashboards at once (uncached) instead of the 15m refreshes",
    )
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return
    spans = (args.spans or ("15m,1h,6h" if args.quick else "15m,1h,6h,24h")).split(",")
    services = args.services or (10 if args.quick else 100)
    hours = max(SPANS_S[s] for s in spans) / 3600 + 0.25
    # Up to now, as a dashboard over "the last 15 minutes" sees it: the newest minutes are what
    # result caches leave out (ours and VictoriaMetrics' hold nothing newer than 5 minutes ago).
    data = generate(
        hours, services, scrape_s=args.scrape_s, end_s=int(time.time()) // args.scrape_s * args.scrape_s
    )
    # The data set is millions of objects that live to the end: kept out of the collector's full
    # passes, which otherwise stall this client for ~90 ms every few seconds, mid-measurement.
    gc.collect()
    gc.freeze()
    out: dict[str, Any] = {
        "services": services,
        "pods": services * data.pods_per_service,
        "scrape_s": args.scrape_s,
        "series": len(data.series),
        "samples": data.samples,
        "loadavg_1m_start": os.getloadavg()[0],
    }
    _say(f"{hours:.2f} h, {out['series']} series, {data.samples} samples")
    dashboards = load_dashboards()
    mismatches: dict[str, int] = {}

    def check(name: str, ours: list[Response], theirs: list[Response]) -> None:
        for a, b in zip(ours, theirs, strict=True):
            if name.startswith("infersight") and not same_answer(a, b):
                mismatches[name] = mismatches.get(name, 0) + 1
                _say(f"{name} differs from prometheus: {a.body[:300]!r} vs {b.body[:300]!r}")

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp, ExitStack() as stack:
        roots = {n: Path(tmp) / n for n in ("infersight", "prometheus", "victoriametrics")}
        for root in roots.values():
            root.mkdir()
        ours, pid = stack.enter_context(infersight(roots["infersight"], data, out))
        _say(f"infersight loaded in {out['load_infersight_s']} s")
        prom = _prometheus(stack, roots["prometheus"], data, out)
        _say(f"prometheus loaded in {out['load_prometheus_s']} s")
        started = time.perf_counter()
        vm = stack.enter_context(
            peers.victoriametrics(roots["victoriametrics"], prometheus_text_chunks(data), cache=True)
        )
        out["load_victoriametrics_s"] = round(time.perf_counter() - started, 1)
        out["settle_s"] = round(peers.settle(peers.PIDS[base] for base in (ours, prom, vm)), 1)
        _say(f"the three servers went quiet after {out['settle_s']} s")
        systems = [
            System("infersight", ours),
            System("infersight_nocache", ours, (("nocache", "1"),)),
            System("prometheus", prom),
            System("victoriametrics", vm, (("nocache", "1"),)),
            System("victoriametrics_cache", vm),
        ]
        end_s = data.end_s

        boards = list(dashboards.values())

        def planner(span_s: int) -> Callable[[dict[str, Any]], list[Request]]:
            def plan(board: dict[str, Any]) -> list[Request]:
                now_s = int(time.time()) if args.live else end_s
                return refresh_requests(board, span_s, now_s, args.scrape_s, "svc-000")

            return plan

        for span in spans:  # before any live write: every system holds the same points
            _checked_round(systems, [planner(SPANS_S[span])(b) for b in boards], check)
        live = LiveScrapes(data, [ours, prom, vm]) if args.live else nullcontext()
        with live:  # the floor and the 20 at once too
            for span in spans:
                times, cpu = _timed_rounds(systems, boards, planner(SPANS_S[span]), args.rounds or 3)
                for name, seconds in times.items():
                    out[f"{span}_{name}_median_refresh_s"] = round(statistics.median(seconds), 4)
                    out[f"{span}_{name}_server_cpu_per_refresh_s"] = round(cpu[name], 4)
                _say(
                    f"{span}: "
                    + ", ".join(f"{n} {statistics.median(t):.3f} s" for n, t in times.items())
                    + "; server CPU per refresh: "
                    + ", ".join(f"{n} {c * 1e3:.1f} ms" for n, c in cpu.items())
                )
            floor_plans = [
                refresh_requests(d, 900, end_s, args.scrape_s, "svc-000") for d in dashboards.values()
            ]
            out["client_floor_median_refresh_s"] = round(
                _client_floor(floor_plans, (args.rounds or 3) + 1), 4
            )
            floor = out["client_floor_median_refresh_s"]
            _say(f"this client's floor (a server that answers at once): {floor} s")
            together = [
                refresh_requests(
                    dashboards["service"],
                    3600,
                    int(time.time()) if args.live else end_s,
                    args.scrape_s,
                    f"svc-{i % services:03d}",
                )
                for i in range(20)
            ]
            for s in systems:
                figures = _together(s, together)
                out[f"20_dashboards_1h_{s.name}_s"] = round(figures.wall_s, 3)
                out[f"20_dashboards_1h_{s.name}_server_cpu_s"] = round(figures.server_cpu_s, 3)
                out[f"20_dashboards_1h_{s.name}_client_cpu_s"] = round(figures.client_cpu_s, 3)
            _say(
                "20 at once: "
                + ", ".join(
                    f"{s.name} {out[f'20_dashboards_1h_{s.name}_s']} s"
                    f" (server CPU {out[f'20_dashboards_1h_{s.name}_server_cpu_s']} s)"
                    for s in systems
                )
            )
            later_s = args.later_s if args.later_s is not None else (0 if args.quick else 60)
            if later_s:
                out["later_s"] = later_s
                _say(f"waiting {later_s} s, scrapes arriving, for a refresh that much later")
                time.sleep(later_s)
                for span in spans:
                    times, cpu = _timed_rounds(systems, boards, planner(SPANS_S[span]), 1, warm_first=False)
                    for name, seconds in times.items():
                        out[f"{span}_{name}_later_median_refresh_s"] = round(statistics.median(seconds), 4)
                        out[f"{span}_{name}_later_server_cpu_per_refresh_s"] = round(cpu[name], 4)
                    _say(
                        f"{span}, {later_s} s later: "
                        + ", ".join(f"{n} {statistics.median(t):.3f} s" for n, t in times.items())
                    )
        if args.profile:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    str(pid),
                    "-o",
                    args.profile,
                    "-f",
                    "raw",
                    "-r",
                    "200",
                    "--nonblocking",
                ]
            )
            time.sleep(1)
            if args.profile_together:
                for _ in range(3):
                    _together(systems[1], together)
            else:
                plans = [
                    refresh_requests(d, 900, end_s, args.scrape_s, "svc-000") for d in dashboards.values()
                ]
                for _ in range(10):
                    for plan in plans:
                        LOOP.run_until_complete(refresh(systems[0], plan))
            spy.send_signal(2)
            spy.wait(timeout=60)
    out["mismatches_vs_prometheus"] = sum(mismatches.values())
    out["loadavg_1m_end"] = os.getloadavg()[0]
    for span in spans:
        ours_s = out[f"{span}_infersight_median_refresh_s"]
        for peer in ("prometheus", "victoriametrics", "victoriametrics_cache"):
            out[f"{span}_time_ratio_vs_{peer}"] = round(ours_s / out[f"{span}_{peer}_median_refresh_s"], 2)
        uncached = out[f"{span}_infersight_nocache_median_refresh_s"]
        out[f"{span}_nocache_time_ratio_vs_victoriametrics"] = round(
            uncached / out[f"{span}_victoriametrics_median_refresh_s"], 2
        )
        if f"{span}_infersight_later_median_refresh_s" in out:
            later = out[f"{span}_infersight_later_median_refresh_s"]
            for peer in ("prometheus", "victoriametrics", "victoriametrics_cache"):
                out[f"{span}_later_time_ratio_vs_{peer}"] = round(
                    later / out[f"{span}_{peer}_later_median_refresh_s"], 2
                )
    print(json.dumps(out))  # noqa: T201 - the benchmark's one line of output


if __name__ == "__main__":
    main()
