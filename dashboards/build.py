"""Writes the dashboards as Grafana JSON (``infersight dashboards``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

from dashboards.service import service_dashboard

DASHBOARDS = {"service": service_dashboard}


def dashboard_json(name: str) -> dict[str, Any]:
    """The JSON model Grafana imports for dashboard ``name``."""
    data: dict[str, Any] = json.loads(json.dumps(DASHBOARDS[name]().to_json_data(), cls=DashboardEncoder))
    return data


def write_dashboards(out_dir: Path) -> list[Path]:
    """Write every dashboard to ``out_dir/<name>.json``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DASHBOARDS:
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(dashboard_json(name), indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths
