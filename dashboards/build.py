"""Writes the dashboards as Grafana JSON (``infersight dashboards``).

grafanalib 0.7 still writes fields of Grafana < 8 (``rows``, ``hideControls``, target ``step``…)
and ``null`` for every unset option; Grafana's current dashboard model (schemaVersion 39, the
one ``grafana-foundation-sdk`` types) has no place for the former and treats the latter as
absent, so both are left out and the JSON is exactly what that model describes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

from dashboards.custom import custom_dashboard
from dashboards.deployment import deployment_dashboard
from dashboards.events import events_dashboard
from dashboards.pod import pod_dashboard
from dashboards.service import service_dashboard

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "service": service_dashboard,
    "deployment": deployment_dashboard,
    "pod": pod_dashboard,
    "custom": custom_dashboard,
    "events": events_dashboard,
}
# grafanalib's pre-Grafana-8 fields, by where they occur
LEGACY_KEYS: dict[str, frozenset[str]] = {
    "dashboard": frozenset({"__inputs", "rows", "hideControls", "sharedCrosshair"}),
    "panel": frozenset({"error", "editable", "hideTimeOverride"}),
    # Table's Grafana-7 styling; current tables style through fieldConfig
    "table": frozenset({"color", "columns", "fontSize", "mappings"}),
    "target": frozenset({"metric", "target", "step", "query"}),
    "variable": frozenset({"useTags", "tags"}),
}
# grafanalib's RowPanel carries every Panel field; Grafana's row model has only these
ROW_KEYS = frozenset({"type", "title", "collapsed", "gridPos", "id", "panels", "repeat"})


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        # a threshold step's "value": null is Grafana's "from -infinity", not an unset option
        return {k: _without_nulls(v) for k, v in value.items() if v is not None or k == "value"}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _modernise(data: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in data.items() if k not in LEGACY_KEYS["dashboard"]}
    panels = []
    for panel in data.get("panels", []):
        panel = {k: v for k, v in panel.items() if k not in LEGACY_KEYS["panel"]}
        if panel.get("type") == "row":
            panel = {k: v for k, v in panel.items() if k in ROW_KEYS}
        elif panel.get("type") == "table":
            panel = {k: v for k, v in panel.items() if k not in LEGACY_KEYS["table"]}
        if "targets" in panel:
            panel["targets"] = [
                {k: v for k, v in t.items() if k not in LEGACY_KEYS["target"]} for t in panel["targets"]
            ]
        panels.append(panel)
    data["panels"] = panels
    variables = []
    for variable in data.get("templating", {}).get("list", []):
        variable = {k: v for k, v in variable.items() if k not in LEGACY_KEYS["variable"]}
        if "current" in variable:
            variable["current"] = {
                k: v for k, v in variable["current"].items() if k not in LEGACY_KEYS["variable"]
            }
        variables.append(variable)
    data["templating"] = {"list": variables}
    return data


def dashboard_json(name: str) -> dict[str, Any]:
    """The JSON model Grafana imports for dashboard ``name``."""
    raw = json.loads(json.dumps(DASHBOARDS[name]().to_json_data(), cls=DashboardEncoder))
    result: dict[str, Any] = _modernise(_without_nulls(raw))
    return result


def write_dashboards(out_dir: Path) -> list[Path]:
    """Write every dashboard to ``out_dir/<name>.json``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DASHBOARDS:
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(dashboard_json(name), indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths
