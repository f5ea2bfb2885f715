"""Custom-metrics browser: any series a target exposes, under its own name (SEED-SPEC §2).

``$metric`` lists every metric name the chosen pods have (``label_values(..., __name__)``);
the panels show it raw and as a per-second rate (meaningful for counters), plus a table of how
many series each metric has, so a user sees what an engine exposes beyond the guide's series.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, Template

from dashboards.frame import dashboard
from dashboards.panels import DATASOURCE, PanelSpec, Query, Row, selector
from dashboards.variables import POD

SEL = selector(*POD.labels)
ANY = selector(*POD.labels, extra='__name__=~".+"')


def metric_variable() -> Template:
    return Template(
        name="metric",
        label="Metric",
        query=f"label_values({{{ANY}}}, __name__)",
        dataSource=DATASOURCE,
        refresh=2,
        default="infer_service_request_total",
    )


def custom_dashboard() -> Dashboard:
    """Browse every series the selected pods expose."""
    metric = f'{{__name__=~"$metric", {SEL}}}'
    panels = (
        PanelSpec(
            "$metric",
            (Query(metric, "{{source}} {{__name__}}"),),
            "short",
            "The selected metric as scraped, one line per series.",
            width=24,
        ),
        PanelSpec(
            "rate($metric)",
            (Query(f"rate({metric}[$period])", "{{source}} {{__name__}}"),),
            "short",
            "Per-second rate over the statistical period: meaningful for counters.",
            width=24,
        ),
        PanelSpec(
            "Series per metric",
            (Query(f"count by (__name__) ({{{ANY}}})", instant=True),),
            "short",
            "Every metric the selected pods expose and how many series each has.",
            table=True,
            width=24,
        ),
    )
    return dashboard(
        title="infersight / Custom metrics",
        uid="infersight-custom",
        description="Any series a target exposes, by metric name.",
        rows=[Row("Metric", panels)],
        level=POD,
        extra_variables=(metric_variable(),),
    )
