"""Panel specs as small values, and the grafanalib panels they become.

A dashboard module lists ``PanelSpec``s (title, PromQL, unit, the guide's definition as the
description); ``layout`` places them on Grafana's 24-column grid under row headers. Queries use
the guide's series names (SEED-SPEC §1.2) so they run unchanged on Prometheus and on infersight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grafanalib.core import GridPos, RowPanel, Table, Target, TimeSeries

# Grafana's typed data-source reference; ``$datasource`` is the dashboard's data-source variable.
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
QUANTILES = (("TP50", 0.5), ("TP90", 0.9), ("TP99", 0.99))
PANEL_HEIGHT = 8
GRID_WIDTH = 24


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target: ``expr`` with Grafana variables, and the legend it draws."""

    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True, slots=True)
class PanelSpec:
    """One panel: a time series unless ``table``; ``thresholds`` are (value, colour) steps above green."""

    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    thresholds: tuple[tuple[float, str], ...] = ()
    max_value: float | None = None
    table: bool = False
    width: int = 12


@dataclass(frozen=True, slots=True)
class Row:
    """A collapsible row header and the panels under it."""

    title: str
    panels: tuple[PanelSpec, ...] = field(default_factory=tuple)


def selector(*labels: tuple[str, str], extra: str = "") -> str:
    """``label=~"$var"`` matchers for the given (label, variable) pairs, plus ``extra`` matchers."""
    parts = [f'{label}=~"${var}"' for label, var in labels]
    if extra:
        parts.insert(0, extra)
    return ", ".join(parts)


def average_expr(histogram: str, sel: str, by: str = "") -> str:
    """The guide's average: increase of ``_sum`` over increase of ``_count`` in the period (T1-59)."""
    group = f" by ({by})" if by else ""
    return (
        f"sum{group} (increase({histogram}_sum{{{sel}}}[$period]))"
        f" / sum{group} (increase({histogram}_count{{{sel}}}[$period]))"
    )


def quantile_queries(histogram: str, sel: str, with_average: bool = True) -> tuple[Query, ...]:
    """Average plus TP50/TP90/TP99 from the classic buckets (``histogram_quantile``)."""
    queries = [Query(average_expr(histogram, sel), "avg")] if with_average else []
    queries += [
        Query(f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{sel}}}[$period])))", name)
        for name, q in QUANTILES
    ]
    return tuple(queries)


def _targets(spec: PanelSpec) -> list[Target]:
    return [
        Target(
            expr=q.expr,
            legendFormat=q.legend,
            refId=chr(ord("A") + i),
            instant=q.instant,
            format="table" if spec.table else "time_series",
        )
        for i, q in enumerate(spec.queries)
    ]


def _field_defaults(spec: PanelSpec) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": colour, "value": value} for value, colour in spec.thresholds]
    defaults: dict[str, Any] = {"thresholds": {"mode": "absolute", "steps": steps}}
    if spec.max_value is not None:
        defaults["max"] = spec.max_value
        defaults["min"] = 0
    if spec.thresholds and not spec.table:
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return defaults


def to_panel(spec: PanelSpec, x: int, y: int) -> TimeSeries | Table:
    """The grafanalib panel for ``spec`` at grid position (x, y)."""
    common: dict[str, Any] = {
        "title": spec.title,
        "description": spec.description,
        "dataSource": DATASOURCE,
        "targets": _targets(spec),
        "unit": spec.unit,
        "gridPos": GridPos(h=PANEL_HEIGHT, w=spec.width, x=x, y=y),
        # grafanalib writes legacy threshold steps; Grafana's model wants {color, value} only.
        "extraJson": {"fieldConfig": {"defaults": _field_defaults(spec)}},
    }
    if spec.table:
        return Table(**common)
    return TimeSeries(**common, legendDisplayMode="table", legendCalcs=["mean", "max", "lastNotNull"])


def layout(rows: list[Row]) -> list[Any]:
    """Row headers and their panels placed left to right, top to bottom."""
    panels: list[Any] = []
    y = 0
    for row in rows:
        panels.append(RowPanel(title=row.title, gridPos=GridPos(h=1, w=GRID_WIDTH, x=0, y=y)))
        y += 1
        x = 0
        for spec in row.panels:
            if x + spec.width > GRID_WIDTH:
                x, y = 0, y + PANEL_HEIGHT
            panels.append(to_panel(spec, x, y))
            x += spec.width
        y += PANEL_HEIGHT
    return panels
