"""The generated dashboards: Grafana's dashboard model, committed output, queries, variables."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser
import pytest

from dashboards.build import DASHBOARDS, dashboard_json
from tests.dashboards.grafana_model import model_errors
from tests.dashboards.queries import panel_queries, parse_label_values, query_variables, substitute

JSON_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "json"
NAMES = sorted(DASHBOARDS)
SAMPLE_VALUES = {
    "datasource": "prom",
    "project_id": "p",
    "service_id": "s",
    "group_id": "g",
    "instance": "i",
    "pod": "pod-0",
    "metric": "up",
    "period": "1m",
    "__range": "15m",
}


@pytest.mark.parametrize("name", NAMES)
def test_committed_json_is_current(name: str) -> None:
    committed = json.loads((JSON_DIR / f"{name}.json").read_text())
    assert committed == dashboard_json(name), "run `make dashboards`"


def test_no_stale_json_is_committed() -> None:
    assert sorted(p.stem for p in JSON_DIR.glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_matches_grafanas_dashboard_model(name: str) -> None:
    assert model_errors(dashboard_json(name)) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("panels", 1, "bogus"), 1, "unknown to the model"),
        (("panels", 1, "gridPos", "h"), "8", "is not <class 'int'>"),
        (("time", "from"), 15, "is not <class 'str'>"),
        (("panels", 1, "datasource"), "${datasource}", "does not decode"),
    ],
)
def test_model_check_rejects_what_grafana_would_not_read(path: tuple, value: object, expected: str) -> None:
    data = dashboard_json("service")
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(expected in error for error in model_errors(data))


@pytest.mark.parametrize("name", NAMES)
def test_every_query_parses_as_promql(name: str) -> None:
    data = dashboard_json(name)
    for query in panel_queries(name, data):
        promql_parser.parse(substitute(query.expr, SAMPLE_VALUES))
    for variable in query_variables(data):
        selector, _ = parse_label_values(variable["query"])
        if selector:
            promql_parser.parse(substitute(selector, SAMPLE_VALUES))


def test_service_overview_covers_the_console() -> None:
    titles = {p["title"] for p in dashboard_json("service")["panels"]}
    assert {
        "Service requests",
        "Service request QPS",
        "Connections",
        "Service request latency",
        "Time to first token",
        "Post-first-token latency",
        "Service token increment",
        "Service input tokens",
        "Output tokens",
        "Used CPU",
        "CPU usage",
        "Used memory",
        "Memory usage",
        "GPU usage",
        "GPU memory",
        "NPU usage",
        "NPU memory",
        "Network throughput",
    } <= titles


def test_panels_have_units_and_definitions() -> None:
    for name in NAMES:
        for panel in dashboard_json(name)["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["description"], (name, panel["title"])
            assert panel["fieldConfig"]["defaults"]["unit"], (name, panel["title"])


@pytest.mark.parametrize("name", ["deployment", "pod", "custom"])
def test_variables_chain_through_label_values(name: str) -> None:
    variables = query_variables(dashboard_json(name))
    chain = [v for v in variables if v["name"] != "metric"]
    assert [v["name"] for v in chain][:4] == ["project_id", "service_id", "group_id", "instance"]
    for i, variable in enumerate(chain):
        selector, _ = parse_label_values(variable["query"])
        for parent in chain[:i]:
            assert f"${parent['name']}" in (selector or ""), (variable["name"], parent["name"])


@pytest.mark.parametrize("name", NAMES)
def test_console_defaults(name: str) -> None:
    data = dashboard_json(name)
    assert data["time"] == {"from": "now-15m", "to": "now"}
    assert data["refresh"] == "1m"
    assert "15d" in data["timepicker"]["time_options"]
    (period,) = [v for v in data["templating"]["list"] if v["name"] == "period"]
    assert [o["value"] for o in period["options"]] == ["1m", "5m", "15m", "1h"]
