"""The generated service dashboard: Grafana's JSON model, committed output kept up to date."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser

from dashboards.build import dashboard_json

COMMITTED = Path(__file__).resolve().parents[2] / "dashboards" / "json" / "service.json"


def test_committed_json_is_current() -> None:
    assert json.loads(COMMITTED.read_text()) == dashboard_json("service"), "run `make dashboards`"


def test_every_panel_query_parses_as_promql() -> None:
    data = dashboard_json("service")
    exprs = [t["expr"] for panel in data["panels"] for t in panel["targets"]]
    assert len(exprs) >= 12
    for expr in exprs:
        promql_parser.parse(
            expr.replace("$period", "1m").replace("$project_id", "p").replace("$service_id", "s")
        )


def test_panels_cover_the_issue() -> None:
    titles = {panel["title"] for panel in dashboard_json("service")["panels"]}
    assert {"Requests by code", "QPS", "Request latency", "TTFT", "TPOT"} <= titles
    variables = {v["name"] for v in dashboard_json("service")["templating"]["list"]}
    assert {"project_id", "service_id", "period"} <= variables
