"""``infersight demo``: simulated services, one sidecar per pod, the embedded store, the API, load.

Everything runs in one process and one event loop, exactly as ``infersight run`` wires real
engines; only the engines (``simulator/``) and the clients (``infersight.load``) are stand-ins.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from alerts.config import AlertsSection
from collector.config import ProbeConfig, ProxyConfig, ResourcesConfig, TargetConfig
from collector.cost import CostConfig
from dashboards.build import write_dashboards
from infersight.config import DEMO_DATA, Config
from infersight.demo_scenario import (
    crash_and_restart,
    format_events,
    format_traces,
    manage_infersight,
    platform_traces,
    read_events_and_traces,
    send_platform_traces,
)
from infersight.load import LoadStats, drive_load
from infersight.run import Runtime
from infersight.summary import (
    ServiceSummary,
    SloSummary,
    format_slo_table,
    format_table,
    summarise,
    summarise_slos,
)
from model.slo import Slo
from simulator.config import SimulatorConfig
from simulator.record import ServedRequest
from simulator.server import SimulatorServer
from store.open import chdb_path

PROJECT_ID = "2f8c6e1a9b7d4c3e8f5a1b2c3d4e5f60"
# The demo's SLO per service, and the first service's misses: every request slowed to SLOW_TTFT_MS
# for the first third of the run, well past the target, so the good/bad split is known exactly.
SLO_TTFT_MS = 2500.0
SLOW_TTFT_MS = 4000.0
SLO_OBJECTIVE = 0.9  # the fast alert pages on its 6x pair (14.4x would need every request bad)
SLO_PERIOD_S = 3 * 86400  # burn-rate windows scale with it: the fast alert reads 6m and 30s
DEMO_PRICE = CostConfig(price_per_hour=2.0, per="accelerator", accelerators=1)


@dataclass
class DemoService:
    service_id: str
    name: str
    pods: list[SimulatorServer] = field(default_factory=list)
    retired: list[SimulatorServer] = field(default_factory=list)  # engines replaced by a restart

    @property
    def served(self) -> list[ServedRequest]:
        return [r for pod in [*self.retired, *self.pods] for r in pod.served]


@dataclass
class DemoReport:
    services: list[DemoService]
    summaries: list[ServiceSummary]
    load: LoadStats
    api_url: str
    dashboard_paths: list[Path]
    duration_s: float
    data_dir: str
    events: list[dict[str, Any]] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)
    audit_verdict: dict[str, Any] = field(default_factory=dict)
    sketch_ttft_counts: dict[str, int] = field(default_factory=dict)
    slos: list[SloSummary] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            f"infersight demo: {self.load.total} requests in {self.duration_s:.0f} s, "
            f"figures read back through {self.api_url}/api/v1/query",
            "",
            format_table(self.summaries),
            "(TPxx from histogram_quantile over the engines' or proxies' buckets; with the proxy, "
            "'sketch' columns are the mergeable sketches, within 1 % of the exact value)",
            "",
            *(
                [
                    f"SLOs (GET {self.api_url}/api/v1/slos; counted per request by the proxies, "
                    "read back through the PromQL API):",
                    format_slo_table(self.slos),
                    "(ground truth: what the clients received and the engines slowed on purpose; "
                    "burn-rate alerts show as InferSloFastBurn/InferSloSlowBurn events below)",
                    "",
                ]
                if self.slos
                else []
            ),
            f"Events ({len(self.events)} after folding repeats; GET {self.api_url}/api/v1/events):",
            format_events(self.events),
            "",
            f"Audit traces (GET {self.api_url}/api/v1/audit/traces); chain verified: "
            f"{self.audit_verdict.get('checked', 0)} records, "
            f"{'intact' if self.audit_verdict.get('ok') else 'TAMPERED'}:",
            format_traces(self.traces),
            "",
            "Dashboards written: " + ", ".join(str(p) for p in self.dashboard_paths),
            f"Grafana: add a Prometheus data source with URL {self.api_url} and import the JSON above.",
            f"Console: {self.api_url}/ in a browser (services, monitoring, events, audit, alerts).",
            "(The demo's API stops with it; to keep serving its data: "
            f"{program()} server --data {self.data_dir}; the next demo starts from an empty folder "
            "unless --keep-data)",
        ]
        return "\n".join(lines)


DEMO_MARKER = "infersight-demo.txt"  # in a data folder the demo made: it may wipe that folder


_MARKER_TEXT = "Written by `infersight demo`: its next run empties this folder (--keep-data keeps it).\n"


class DemoDataError(RuntimeError):
    """The data folder holds something the demo did not write: it is not wiped."""


def prepare_data_folder(config: Config, keep: bool = False) -> Path | None:
    """Empty the demo's chDB folder and its audit folder beside it, so a run starts from nothing
    (its events and audit records are the run's own); ``keep`` adds to what is there instead.

    A folder is wiped only when it is empty or the demo made it (``DEMO_MARKER``); one another
    process has open, or one that holds anything else, is refused rather than lost. With a
    ClickHouse server store nothing is wiped (None). Returns the data folder.
    """
    import shutil

    from infersight.config import audit_paths
    from store.chdb import StoreInUseError, ensure_not_in_use

    if not config.store.dsn.startswith("chdb://"):
        return None
    data = Path(chdb_path(config.store.dsn))
    if data.exists() and not data.is_dir():
        raise DemoDataError(f"{data} is a file, not a data folder")
    empty = not data.exists() or not any(data.iterdir())
    if keep:
        if empty:
            data.mkdir(parents=True, exist_ok=True)
            (data / DEMO_MARKER).write_text(_MARKER_TEXT)
        return data
    if not empty:
        # data/demo from before the marker existed is the demo's too: `make demo` always used it.
        if not (data / DEMO_MARKER).exists() and data.resolve() != Path(DEMO_DATA).resolve():
            raise DemoDataError(
                f"{data} holds data the demo did not write; give another --data folder, "
                "or --keep-data to add to it"
            )
        try:
            ensure_not_in_use(data)
        except StoreInUseError as err:
            raise DemoDataError(str(err)) from None
        shutil.rmtree(data)
    # Digests of an earlier run would make this run's new chain look tampered: they go too,
    # but only the demo's own, in the audit folder beside the data folder.
    audit = (data.parent / f"{data.name}-audit").resolve()
    for path in audit_paths(config):
        if path.exists() and path.resolve().is_relative_to(audit):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    data.mkdir(parents=True, exist_ok=True)
    (data / DEMO_MARKER).write_text(_MARKER_TEXT)
    return data


def program() -> str:
    """How this shell can start infersight again: ``infersight`` when that is on PATH and is
    this one, else the path it was started by (``.venv/bin/infersight`` after ``make demo``)."""
    import os
    import shutil
    import sys

    started = Path(sys.argv[0])
    if started.name != "infersight":
        return "infersight"
    found = shutil.which("infersight")
    if found and Path(found).resolve() == started.resolve():
        return "infersight"
    relative = os.path.relpath(started)
    return str(started) if relative.startswith("..") else relative


def _service_config(
    base: SimulatorConfig, service: int, pod: int, slow_for_s: float | None = None
) -> SimulatorConfig:
    # Each service gets its own latency profile so the table tells them apart.
    config = dataclasses.replace(
        base,
        ttft_median_ms=base.ttft_median_ms * (1 + service),
        itl_median_ms=base.itl_median_ms * (1 + 0.5 * service),
        seed=None if base.seed is None else base.seed + 100 * service + pod,
    )
    if service == 0 and slow_for_s is not None and not base.slow_every:
        config = dataclasses.replace(config, slow_every=1, slow_ttft_ms=SLOW_TTFT_MS, slow_for_s=slow_for_s)
    return config


def demo_slos(services: list[DemoService]) -> tuple[Slo, ...]:
    """One TTFT SLO per service, in the demo's project."""
    return tuple(
        Slo(
            f"{s.name}-ttft",
            s.service_id,
            project_id=PROJECT_ID,
            ttft_ms=SLO_TTFT_MS,
            objective=SLO_OBJECTIVE,
            period_s=SLO_PERIOD_S,
        )
        for s in services
    )


def slo_ground_truth(service: DemoService, load: LoadStats) -> tuple[int, int]:
    """(good, bad) as the clients and engines know it: a 200 is good unless the engine slowed it on
    purpose; 5xx answers and streams cut short (no status) are bad; 4xx are left out."""
    codes = load.codes.get(service.service_id, {})
    slowed = sum(r.slowed and r.status == 200 and r.finish_reason != "abort" for r in service.served)
    bad = sum(n for code, n in codes.items() if code >= 500 or code == 0)
    return codes.get(200, 0) - slowed, bad + slowed


def _pods(services: list[DemoService]) -> list[tuple[DemoService, SimulatorServer]]:
    return [(service, pod) for service in services for pod in service.pods]


def _targets(services: list[DemoService]) -> list[TargetConfig]:
    targets = []
    for service in services:
        for p, pod in enumerate(service.pods):
            targets.append(
                TargetConfig(
                    url=f"{pod.url}/metrics",
                    engine="vllm",
                    service_id=service.service_id,
                    service_name=service.name,
                    group_id=f"{service.service_id[:8]}-group-0",
                    project_id=PROJECT_ID,
                    instance_name=f"{service.name}-instance-0",
                    source=f"{service.name}-pod-{p}",
                    allowed_ports=(pod.port or 0,),
                )
            )
    return targets


async def run_demo(
    config: Config,
    stop: asyncio.Event | None = None,
    progress: Callable[[str], None] | None = None,
    on_started: Callable[[], None] | None = None,
) -> DemoReport:
    """Run until ``config.demo.duration_s`` passes or ``stop`` is set, then summarise.

    ``on_started`` is called once the store and the API are up (the CLI shows held log lines then).
    """
    demo = config.demo
    stop = stop or asyncio.Event()
    services = [
        DemoService(str(uuid.uuid5(uuid.NAMESPACE_URL, f"infersight-demo/{s}")), f"demo-svc-{s + 1}")
        for s in range(demo.services)
    ]
    interval_s = demo.scrape_interval_s
    slow_for_s = None
    if demo.slo_misses and demo.proxy:
        slow_for_s = max(3 * interval_s, (demo.duration_s or 90.0) / 3)
    for s, service in enumerate(services):
        for p in range(demo.pods_per_service):
            server = SimulatorServer(_service_config(config.simulator, s, p, slow_for_s))
            await server.start()
            service.pods.append(server)
    scrape = dataclasses.replace(
        config.scrape, interval_s=interval_s, timeout_s=min(config.scrape.timeout_s, interval_s)
    )
    events = dataclasses.replace(config.events, interval_s=interval_s)
    alerts = config.alerts
    if alerts == AlertsSection():
        # Short `for` windows so a demo of a minute shows the crashed pod's alert fire and resolve.
        alerts = AlertsSection.from_dict(
            {
                "interval": f"{round(interval_s * 1000)}ms",
                "defaults": {"health_for": f"{round(2 * interval_s)}s"},
            }
        )
    slos = config.slos or (demo_slos(services) if demo.proxy else ())
    cost = config.cost or DEMO_PRICE
    base = dataclasses.replace(
        config, scrape=scrape, events=events, alerts=alerts, targets=(), slos=slos, cost=cost
    )
    runtime = Runtime(base)
    stats = LoadStats()
    say = progress or logger.info
    chaos: asyncio.Task[None] | None = None
    try:
        await runtime.start()
        if on_started is not None:
            on_started()
        # One sidecar per pod, as in a cluster: its scrapes and, with demo.proxy, its ingress proxy.
        entry: dict[str, list[str]] = {s.service_id: [] for s in services}
        for target, (service, pod) in zip(_targets(services), _pods(services), strict=True):
            proxy = (
                ProxyConfig(listen="127.0.0.1:0", upstream=pod.url, flush_interval_s=interval_s)
                if demo.proxy
                else None
            )
            # The guide's readiness probe on the engine's /health: the crash shows as Unhealthy.
            probe = ProbeConfig(
                kind="readiness", url=f"{pod.url}/health", period_s=interval_s, failure_threshold=1
            )
            # Each sidecar reads the container it runs in (here, the demo's own: one machine) and the
            # pod's accelerators through their exporters (here, each simulated engine's stand-ins).
            resources = ResourcesConfig(
                interval_s=interval_s,
                timeout_s=min(5.0, interval_s),
                gpu="dcgm",
                dcgm_url=f"{pod.url}/dcgm/metrics",
                npu="exporter",
                npu_exporter_url=f"{pod.url}/npu-exporter/metrics",
            )
            pod_config = dataclasses.replace(
                base, targets=(target,), proxy=proxy, probes=(probe,), resources=resources
            )
            collector = await runtime.add_pod(pod_config)
            entry[service.service_id].append(collector.proxy.url if collector.proxy else pod.url)
        started = time.time()
        names = {s.service_id: s.name for s in services}
        traces = platform_traces(names, PROJECT_ID, int(started * 1000))
        admin = {"Authorization": f"Bearer {config.auth.admin_key}"} if config.auth.enabled else None
        await asyncio.to_thread(send_platform_traces, runtime.api_url, traces, admin)
        await asyncio.to_thread(manage_infersight, runtime.api_url, PROJECT_ID, admin)
        say(f"demo: the console is at {runtime.api_url}/ while the demo runs (open it in a browser)")
        if demo.chaos:
            crash_at, restart_at = _chaos_times(demo.duration_s, interval_s)
            victim = services[-1]
            chaos = asyncio.create_task(
                crash_and_restart(victim.pods, victim.retired, crash_at, restart_at, stop, say)
            )
        load = asyncio.create_task(drive_load(entry, demo.concurrency, stop, stats))
        await _wait(stop, demo.duration_s, started, stats, runtime, progress)
        stop.set()
        await load
        if chaos is not None:
            await chaos
        # One last scrape of every pod, so the store holds every request the engines served.
        await runtime.scrape_all()
        await runtime.detect_events_now()
        ended = time.time()
        events_seen, traces_seen, verdict = await asyncio.to_thread(
            read_events_and_traces, runtime.api_url, admin
        )
        summaries = await asyncio.to_thread(
            summarise,
            runtime.api_url,
            {s.service_id: s.name for s in services},
            ended,
            ended - started + 1,
            admin,
        )
        slo_rows = await asyncio.to_thread(
            _slo_summaries, runtime.api_url, services, stats, ended, started, admin
        )
        paths = write_dashboards(Path(config.dashboards.out_dir))
        data_dir = chdb_path(config.store.dsn)
        return DemoReport(
            services,
            summaries,
            stats,
            runtime.api_url,
            paths,
            ended - started,
            data_dir,
            events_seen,
            traces_seen,
            verdict,
            {summary.service_id: summary.sketch_count for summary in summaries if summary.sketch_count},
            slo_rows,
        )
    finally:
        if chaos is not None and not chaos.done():
            chaos.cancel()
        await runtime.stop()
        for service in services:
            for pod in service.pods:
                await pod.stop()


def _slo_summaries(
    api_url: str,
    services: list[DemoService],
    load: LoadStats,
    ended: float,
    started: float,
    headers: dict[str, str] | None,
) -> list[SloSummary]:
    """The SLO table: the SLOs as the API lists them, their counts through PromQL, and the ground
    truth of the demo's own services beside them."""
    import httpx

    slos = httpx.get(f"{api_url}/api/v1/slos", headers=headers, timeout=30).json()["data"]
    names = {s.service_id: s.name for s in services}
    rows = summarise_slos(api_url, slos, names, ended, ended - started + 1, headers)
    by_id = {s.service_id: s for s in services}
    for row, slo in zip(rows, slos, strict=True):
        service = by_id.get(slo["service_id"])
        if service is not None and slo["name"] == f"{service.name}-ttft":
            row.truth_good, row.truth_bad = slo_ground_truth(service, load)
    return rows


def _chaos_times(duration_s: float | None, interval_s: float) -> tuple[float, float]:
    """When to crash and restart: a third and two thirds into the run (30 s / 60 s when open-ended),
    at least two scrape intervals apart so the failed scrapes are seen."""
    if duration_s is None:
        return max(30.0, 2 * interval_s), max(60.0, 5 * interval_s)
    crash = duration_s / 3
    return crash, max(crash + 2 * interval_s, 2 * duration_s / 3)


async def _wait(
    stop: asyncio.Event,
    duration_s: float | None,
    started: float,
    stats: LoadStats,
    runtime: Runtime,
    progress: Callable[[str], None] | None,
) -> None:
    deadline = None if duration_s is None else started + duration_s
    while not stop.is_set():
        remaining = 5.0 if deadline is None else min(5.0, deadline - time.time())
        if remaining <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), remaining)
        message = (
            f"{time.time() - started:5.0f} s  requests sent {stats.total}  "
            f"samples stored {runtime.exported_samples}  pending {runtime.pending_samples}"
        )
        (progress or logger.info)(message)
