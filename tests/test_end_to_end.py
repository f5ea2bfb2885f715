"""The demo path end to end: simulated engines → sidecars → chDB → PromQL API, against ground truth."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from infersight.config import load_config
from infersight.demo import run_demo

# vLLM's TTFT buckets (seconds), as the simulator exposes them and the sidecar maps them to ms.
TTFT_BUCKETS_MS = [
    b * 1000
    for b in (
        0.001,
        0.005,
        0.01,
        0.02,
        0.04,
        0.06,
        0.08,
        0.1,
        0.25,
        0.5,
        0.75,
        1,
        2.5,
        5,
        7.5,
        10,
        20,
        40,
        80,
    )
]


def _bucket(value_ms: float) -> tuple[float, float]:
    lower = 0.0
    for upper in TTFT_BUCKETS_MS:
        if value_ms <= upper + 1e-9:
            return lower, upper
        lower = upper
    return lower, math.inf


@pytest.mark.integration
@pytest.mark.slow
def test_demo_tp90_matches_what_the_engines_served(tmp_path: Path) -> None:
    config = load_config(
        None,
        [
            f"store.dsn=chdb://{tmp_path / 'data'}",
            "server.listen=127.0.0.1:0",
            f"dashboards.out_dir={tmp_path / 'dashboards'}",
            "demo.duration_s=30",
            "demo.concurrency=6",
            "demo.chaos=false",  # a restarted engine's counters start again; ground truth is per run
            "demo.proxy=false",  # the engines' own histograms: the bucket bound below is vLLM's
        ],
    )
    report = asyncio.run(run_demo(config))

    assert report.load.total > 100
    assert "service.json" in [p.name for p in report.dashboard_paths]
    for service, summary in zip(report.services, report.summaries, strict=True):
        served = service.served
        ok = [r for r in served if r.status == 200]
        assert len(ok) > 20
        # Every request the engines answered is counted, by code, through PromQL.
        served_by_code: dict[str, int] = {}
        for r in served:
            code = f"{r.status // 100}xx"
            served_by_code[code] = served_by_code.get(code, 0) + 1
        assert {c: round(v) for c, v in summary.requests_by_code.items()} == served_by_code
        # The API's TTFT TP90 (histogram_quantile on vLLM's buckets) lies in the bucket that holds
        # the exact TP90 of what was served: that is the error histogram_quantile must have.
        ttfts_ms = np.array([r.ttft_s * 1000 for r in ok if r.ttft_s is not None])
        exact = float(np.quantile(ttfts_ms, 0.9, method="inverted_cdf"))
        lower, upper = _bucket(exact)
        estimate = summary.ttft_ms["TP90"]
        assert lower <= estimate <= upper, (exact, estimate, (lower, upper))


@pytest.mark.integration
@pytest.mark.slow
def test_demo_crash_shows_as_events_and_platform_calls_as_audit_traces(tmp_path: Path) -> None:
    config = load_config(
        None,
        [
            f"store.dsn=chdb://{tmp_path / 'data'}",
            "server.listen=127.0.0.1:0",
            f"dashboards.out_dir={tmp_path / 'dashboards'}",
            "demo.duration_s=16",
            "demo.scrape_interval_s=2",
            "demo.concurrency=4",
        ],
    )
    report = asyncio.run(run_demo(config))
    crashed = report.services[-1]
    pod = f"{crashed.name}-pod-{len(crashed.pods) - 1}"
    seen = {(e["kind"], e["reason"], e["object"]["pod"]) for e in report.events}
    assert {("pod", "ScrapeFailed", pod), ("pod", "Unhealthy", pod), ("pod", "ScrapeRecovered", pod)} <= seen
    assert ("pod", "Started", pod) in seen  # the fresh engine's start time moved
    probe_events = {
        (e["reason"], e["object"]["pod"]) for e in report.events if e["message"].startswith("readiness")
    }
    assert {("Unhealthy", pod), ("Healthy", pod)} <= probe_events
    messages = {e["message"] for e in report.events if e["object"]["service_id"] == crashed.service_id}
    assert "Service status transitioned from RUNNING to ALARM." in messages
    assert "Service status change from ALARM to RUNNING." in messages
    # No pod that kept running is reported as restarted or failing.
    healthy_pods = {f"{s.name}-pod-{i}" for s in report.services for i in range(len(s.pods))} - {pod}
    assert not {p for kind, reason, p in seen if reason in ("Started", "ScrapeFailed") and p in healthy_pods}
    names = [t["trace_name"] for t in report.traces]
    assert names.count("CreateServiceV2") == len(report.services)
    assert "StopDeployment" in names
    assert {"CreateApiKeyV2", "UpdateRetentionPolicy"} <= set(names)  # infersight's own, audited
    assert all("sk-demo-secret" not in t["request"] for t in report.traces)
    assert report.audit_verdict["ok"] is True
    # The proxies in front of the pods measured every answered request into quantile sketches.
    assert report.sketch_ttft_counts, "no sketch quantiles read back"
    for service in report.services:
        answered = sum(1 for r in service.served if r.status == 200)
        assert report.sketch_ttft_counts[service.service_id] == answered
