"""Every panel and variable query of every dashboard, run on the demo's data through the API.

Variables are resolved as Grafana does (``label_values`` through the label-values endpoint, the
chain top-down, the first value taken), then each panel target runs as a range query over the
default 15 minutes. A query without data fails, unless ``EXPECTED_NO_DATA`` names it with the
reason; such a query must indeed be empty, so the list shrinks when the data arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.generate import RulesConfig, build_rules
from dashboards.build import DASHBOARDS, dashboard_json
from tests.dashboards.demo_data import DemoApi, evaluate_alerts, open_api, run_demo_store
from tests.dashboards.queries import (
    PanelQuery,
    panel_queries,
    parse_label_values,
    query_variables,
    substitute,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Every panel has data on the demo: its simulated engines also expose a stand-in dcgm-exporter and
# npu-exporter (simulator/devices.py), so even the GPU and NPU panels are fed. A panel that cannot
# have data on the demo would be named here with its reason.
EXPECTED_NO_DATA: dict[tuple[str, str], str] = {}
PREFERRED = {"metric": "infer_service_request_total"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoApi]:
    dsn = run_demo_store(Path(tmp_path_factory.mktemp("demo")))
    demo = open_api(dsn)
    # the demo's engines answer a few percent 5xx: with a 0.1 % threshold and no wait, the 5xx rule
    # fires, so the alert panels have ALERTS to show (the default rules file, thresholds overridden)
    rules = build_rules(RulesConfig.from_dict({"defaults": {"error_ratio": 0.001, "errors_for": 0}}))
    evaluator, demo.alerts_sent["firing"] = evaluate_alerts(demo, rules)
    # six minutes after the demo stopped no request is left in the 5-minute windows: resolved
    demo.alerts_sent["resolved"] = evaluator.evaluate(int(demo.end_s * 1000) + 6 * 60_000)
    yield demo
    demo.client.close()
    demo.store.close()


def resolve_variables(api: DemoApi, name: str) -> dict[str, str]:
    """Values for every variable of dashboard ``name``, as Grafana would pick them on the demo."""
    data = dashboard_json(name)
    values = {"datasource": "infersight", "period": "1m", "__range": "15m"}
    for variable in query_variables(data):
        selector, label = parse_label_values(variable["query"])
        options = api.label_values(label, substitute(selector, values) if selector else None)
        assert options, f"{name}: variable ${variable['name']} ({variable['query']}) lists nothing"
        preferred = PREFERRED.get(variable["name"])
        values[variable["name"]] = preferred if preferred in options else options[0]
    return values


def _queries() -> list[PanelQuery]:
    return [q for name in sorted(DASHBOARDS) for q in panel_queries(name, dashboard_json(name))]


def test_a_demo_alert_fires_and_resolves(api: DemoApi) -> None:
    firing = {a.labels["alertname"] for a in api.alerts_sent["firing"] if a.state.value == "firing"}
    resolved = {a.labels["alertname"] for a in api.alerts_sent["resolved"] if a.state.value == "inactive"}
    assert "InferService5xxRatioHigh" in firing
    assert "InferService5xxRatioHigh" in resolved


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_variable_lists_values(api: DemoApi, name: str) -> None:
    values = resolve_variables(api, name)
    assert values.get("service_id"), values


def test_every_panel_query_returns_data(api: DemoApi) -> None:
    variables = {name: resolve_variables(api, name) for name in DASHBOARDS}
    missing, unexpected = [], []
    queries = _queries()
    assert len(queries) >= 60
    for query in queries:
        expr = substitute(query.expr, variables[query.dashboard])
        has_data = api.has_data(expr, query.instant)
        reason = EXPECTED_NO_DATA.get((query.dashboard, query.panel))
        if not has_data and reason is None:
            missing.append(f"{query.key}: {expr}")
        if has_data and reason is not None:
            unexpected.append(f"{query.key} now has data: remove it from EXPECTED_NO_DATA ({reason})")
    assert not missing, "panels showing 'No data' on the demo:\n" + "\n".join(missing)
    assert not unexpected, "\n".join(unexpected)


@pytest.mark.parametrize("period", ["1m", "5m", "15m", "1h"])
def test_every_statistical_period_gives_data(api: DemoApi, period: str) -> None:
    values = {**resolve_variables(api, "service"), "period": period}
    for query in panel_queries("service", dashboard_json("service")):
        if ("service", query.panel) not in EXPECTED_NO_DATA:
            assert api.has_data(substitute(query.expr, values), query.instant), (period, query.key)
