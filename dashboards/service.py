"""The service dashboard: requests, QPS, latency, TTFT/TPOT TPxx and tokens of one inference service.

Queries use the guide's series names (SEED-SPEC §1.2) and its TPxx form
(``histogram_quantile(q, sum by (le) (rate(<x>_bucket[period])))``), so they run unchanged on
Prometheus and on infersight's API. ``$period`` is the guide's statistical period (1m/5m/15m/1h).
"""

from __future__ import annotations

from grafanalib.core import Dashboard, GridPos, Target, Template, Templating, Time, TimeSeries

DATASOURCE = "${datasource}"
SELECTOR = 'project_id=~"$project_id", service_id=~"$service_id"'
QUANTILES = (("TP50", 0.5), ("TP90", 0.9), ("TP99", 0.99))


def _quantile_targets(histogram: str) -> list[Target]:
    return [
        Target(
            expr=f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{SELECTOR}}}[$period])))",
            legendFormat=name,
            refId=name,
        )
        for name, q in QUANTILES
    ]


def _panel(title: str, targets: list[Target], unit: str, slot: int, description: str = "") -> TimeSeries:
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        unit=unit,
        gridPos=GridPos(h=8, w=12, x=12 * (slot % 2), y=8 * (slot // 2)),
    )


def _panels() -> list[TimeSeries]:
    requests = f"infer_service_request_total{{{SELECTOR}}}"
    specs = [
        (
            "Requests by code",
            [
                Target(
                    expr=f"sum by (code) (increase({requests}[$period]))", legendFormat="{{code}}", refId="A"
                )
            ],
            "short",
            "Calls per statistical period, split by return code (2xx/4xx/5xx).",
        ),
        (
            "QPS",
            [Target(expr=f"sum(rate({requests}[$period]))", legendFormat="QPS", refId="A")],
            "reqps",
            "Calls in the period divided by its seconds (the guide's definition of QPS).",
        ),
        (
            "Request latency",
            _quantile_targets("infer_service_request_cost"),
            "ms",
            "End-to-end request latency.",
        ),
        ("TTFT", _quantile_targets("infer_service_first_token_cost"), "ms", "Time to first token."),
        (
            "TPOT",
            _quantile_targets("infer_service_per_token_cost"),
            "ms",
            "Latency of each output token after the first.",
        ),
        (
            "Input / output tokens per second",
            [
                Target(
                    expr=f"sum(rate(infer_service_input_token_quantity_sum{{{SELECTOR}}}[$period]))",
                    legendFormat="input",
                    refId="A",
                ),
                Target(
                    expr=f"sum(rate(infer_service_output_token_quantity_sum{{{SELECTOR}}}[$period]))",
                    legendFormat="output",
                    refId="B",
                ),
            ],
            "short",
            "Service tokens: input plus output is the guide's token increment.",
        ),
    ]
    return [_panel(title, targets, unit, i, desc) for i, (title, targets, unit, desc) in enumerate(specs)]


def _templating() -> Templating:
    datasource = Template(
        name="datasource", query="prometheus", type="datasource", label="Data source", default=""
    )
    project = Template(
        name="project_id",
        label="Project",
        query="label_values(infer_service_request_total, project_id)",
        dataSource=DATASOURCE,
        includeAll=True,
        allValue=".*",
        default="$__all",
    )
    service = Template(
        name="service_id",
        label="Service",
        query='label_values(infer_service_request_total{project_id=~"$project_id"}, service_id)',
        dataSource=DATASOURCE,
        includeAll=True,
        allValue=".*",
        default="$__all",
    )
    period = Template(
        name="period",
        label="Statistical period",
        query="1m,5m,15m,1h",
        type="custom",
        default="1m",
    )
    return Templating(list=[datasource, project, service, period])


def service_dashboard() -> Dashboard:
    """The dashboard value; ``dashboards.build`` turns it into JSON."""
    return Dashboard(
        title="infersight / Inference service",
        uid="infersight-service",
        description="One inference service: requests, QPS, latency, TTFT, TPOT and tokens.",
        tags=["infersight", "inference"],
        panels=_panels(),
        templating=_templating(),
        time=Time("now-15m", "now"),
        refresh="1m",
        schemaVersion=36,
        timezone="browser",
    ).auto_panel_ids()
