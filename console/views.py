"""What the Monitoring view draws at each drill-down level: the generated dashboards' own panels.

The console and the Grafana dashboards show the same PromQL, written once in ``dashboards/``. At
service level every panel of the service dashboard shows (the guide's table 1-58); below it, at
deployment, instance and pod level, only the resource rows, as the guide's console does
(SEED-SPEC §1.5, §1.10.3). Queries keep Grafana's variables (``$service_id``, ``$period`` …) for
the page to fill in.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from dashboards.build import dashboard_json
from dashboards.frame import REFRESH_INTERVALS, TIME_OPTIONS
from dashboards.variables import CHAIN, PERIODS

# level → (dashboard, the row titles it keeps: None for all of them)
LEVELS: dict[str, tuple[str, str | None]] = {
    "service": ("service", None),
    "deployment": ("deployment", "Resources"),
    "instance": ("deployment", "Resources"),
    "pod": ("pod", "Resources"),
}
MAX_SPAN = "15d"  # the guide's longest monitoring span


def _panel(panel: dict[str, Any]) -> dict[str, Any]:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    return {
        "title": panel["title"],
        "description": panel.get("description", ""),
        "unit": defaults.get("unit", "short"),
        "max": defaults.get("max"),
        "queries": [{"expr": t["expr"], "legend": t.get("legendFormat", "")} for t in panel["targets"]],
    }


def level_rows(level: str) -> list[dict[str, Any]]:
    """The rows of panels (title, unit, description, queries) shown at ``level``."""
    name, keep = LEVELS[level]
    rows: list[dict[str, Any]] = []
    for panel in dashboard_json(name)["panels"]:
        if panel["type"] == "row":
            rows.append({"title": panel["title"], "panels": []})
        elif rows:
            rows[-1]["panels"].append(_panel(panel))
    return [row for row in rows if keep is None or row["title"].startswith(keep)]


@cache
def console_settings() -> dict[str, Any]:
    """Everything the pages need besides the APIs: periods, spans, refresh, the chain's labels, views."""
    return {
        "periods": list(PERIODS),
        "spans": list(TIME_OPTIONS),
        "max_span": MAX_SPAN,
        "refresh": REFRESH_INTERVALS[0],
        "chain": [{"variable": var, "label": label, "title": title} for var, label, title in CHAIN],
        "views": {level: level_rows(level) for level in LEVELS},
    }
