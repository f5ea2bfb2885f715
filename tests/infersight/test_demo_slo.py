"""The demo's SLOs end to end: simulated engines that miss the TTFT target a known share of the
time → proxies → chDB → PromQL API. Attainment and goodput equal the ground truth exactly, the
fast burn-rate alert fires and resolves, and the dashboards' SLO and cost panels have data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infersight.config import load_config
from infersight.demo import SLO_TTFT_MS, run_demo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_slo_table_equals_ground_truth_and_burn_alert_fires_and_resolves(tmp_path: Path) -> None:
    config = load_config(
        None,
        [
            f"store.dsn=chdb://{tmp_path / 'data'}",
            "server.listen=127.0.0.1:0",
            f"dashboards.out_dir={tmp_path / 'dashboards'}",
            "demo.duration_s=30",
            "demo.scrape_interval_s=2",
            "demo.concurrency=6",
            "demo.chaos=false",  # every request reaches an engine: the ground truth is the engines'
        ],
    )
    report = asyncio.run(run_demo(config))
    rows = {row.name: row for row in report.slos}
    slowed_service, steady_service = report.services
    slowed = rows[f"{slowed_service.name}-ttft"]
    steady = rows[f"{steady_service.name}-ttft"]
    assert slowed.targets == f"TTFT<={SLO_TTFT_MS:g}ms"
    missed = sum(r.slowed for r in slowed_service.served)
    assert missed > 0
    for row in (slowed, steady):
        assert (row.good, row.bad) == (row.truth_good, row.truth_bad), report.render()
        assert row.goodput == row.good / row.window_s
    assert slowed.bad >= missed  # the slowed requests and the engines' injected 500s
    assert slowed.attainment < steady.attainment
    text = report.render()
    assert "ground truth (good/bad)" in text
    assert f"{slowed.truth_good}/{slowed.truth_bad}" in text

    burns = {
        (e["reason"], e["message"].split(":")[0])
        for e in report.events
        if e["object"]["service_id"] == slowed_service.service_id
    }
    assert ("InferSloFastBurn", "Alert firing") in burns
    assert ("InferSloFastBurn", "Alert resolved") in burns
