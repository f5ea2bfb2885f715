"""Every query a dashboard runs (panel targets and variable queries), with Grafana variables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dashboard, self.panel, self.ref_id)


def panel_queries(name: str, data: dict[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(name, panel["title"], t["refId"], t["expr"], bool(t.get("instant")))
        for panel in data["panels"]
        for t in panel.get("targets", [])
    ]


def query_variables(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in data["templating"]["list"] if v["type"] == "query"]


def substitute(text: str, values: dict[str, str]) -> str:
    """Grafana's interpolation of ``$name`` and ``${name}``; an unknown variable is an error."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"variable ${name} has no value")
        return values[name]

    return VARIABLE.sub(one, text)


LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>[\w]+)\)$")


def parse_label_values(query: str) -> tuple[str | None, str]:
    """``label_values(selector, label)`` → (selector or None, label), as Grafana's Prometheus source."""
    match = LABEL_VALUES.match(query.strip())
    if not match:
        raise ValueError(f"not a label_values() query: {query}")
    return match.group("selector"), match.group("label")
