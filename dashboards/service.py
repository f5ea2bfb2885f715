"""Service overview: every metric of the console's Monitoring tab (SEED-SPEC §1.5, T1-58).

Requests by code, QPS, connections, request latency, TTFT, post-first-token latency (average and
TP50/TP90/TP99), token increments and input/output token TPxx, then resources. TPxx come from
the classic buckets (``histogram_quantile``); averages are ``_sum``/``_count`` increases, as the
guide's own statements (§1.4). ``$period`` is the statistical period (1m/5m/15m/1h).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from dashboards.frame import dashboard
from dashboards.panels import PanelSpec, Query, Row, quantile_queries, selector
from dashboards.resources import resource_panels
from dashboards.slo import cost_row, role_row, slo_row
from dashboards.variables import SERVICE

SEL = selector(*SERVICE.labels)
TPXX = (
    "TPxx represents the threshold value below which xx% of user requests fall within the statistical "
    "interval; an estimated value, which may be a decimal."
)
LATENCY_THRESHOLDS = ((1000.0, "orange"), (3000.0, "red"))


def _requests() -> Row:
    requests = f"infer_service_request_total{{{SEL}}}"
    return Row(
        "Requests",
        (
            PanelSpec(
                "Service requests",
                (
                    Query(f"sum by (code) (increase({requests}[$period]))", "{{code}}"),
                    Query(f"sum(increase({requests}[$period]))", "total"),
                ),
                "short",
                "Calls in the statistical period by return code (2xx/4xx/5xx); 2xx is the number of "
                "successful calls.",
            ),
            PanelSpec(
                "Service request QPS",
                (Query(f"sum(rate({requests}[$period]))", "QPS"),),
                "reqps",
                "Total calls in the statistical period divided by the seconds in the period.",
            ),
            PanelSpec(
                "Connections",
                (Query(f"sum(infer_service_request_connect_count{{{SEL}}})", "connections"),),
                "short",
                "Real-time connection sampling: requests holding a connection at collection time.",
            ),
            PanelSpec(
                "Healthy pods",
                (Query(f"sum(up{{{SEL}}})", "up"), Query(f"count(up{{{SEL}}})", "scraped")),
                "short",
                "Pods whose last scrape succeeded (up = 1) against all scraped pods.",
            ),
        ),
    )


def _latency() -> Row:
    return Row(
        "Latency",
        (
            PanelSpec(
                "Service request latency",
                quantile_queries("infer_service_request_cost", SEL),
                "ms",
                f"Request latency: average trend, TP50, TP90 and TP99. {TPXX}",
                LATENCY_THRESHOLDS,
            ),
            PanelSpec(
                "Time to first token",
                quantile_queries("infer_service_first_token_cost", SEL),
                "ms",
                "TTFT: the duration from when a request is initiated until the first token is "
                f"returned. Average, TP50, TP90, TP99. {TPXX}",
                LATENCY_THRESHOLDS,
            ),
            PanelSpec(
                "TTFT TP99: buckets vs sketches",
                (
                    Query(
                        "histogram_quantile(0.99, sum by (le) "
                        f"(rate(infer_service_first_token_cost_bucket{{{SEL}}}[$period])))",
                        "TP99 (histogram_quantile)",
                    ),
                    Query(
                        'max(infersight_sketch_quantile{metric="infer_service_first_token_cost", '
                        f'quantile="0.99", {SEL}}})',
                        "TP99 (sketch, per 10 s window)",
                    ),
                ),
                "ms",
                "The same TP99 two ways: interpolated inside the classic buckets (as coarse as the bucket "
                "it falls in) and from the ingress proxy's mergeable sketches (within 1 % of the exact "
                "value, merged over every selected pod, per 10 s window). Sketches exist where the "
                "sidecar's proxy measures requests.",
                LATENCY_THRESHOLDS,
            ),
            PanelSpec(
                "Post-first-token latency",
                quantile_queries("infer_service_per_token_cost", SEL),
                "ms",
                "TPOT: the generation latency of each token after the first (first token excluded). "
                f"Average, TP50, TP90, TP99. {TPXX}",
                ((100.0, "orange"), (200.0, "red")),
            ),
        ),
    )


def _tokens() -> Row:
    def increase(name: str) -> str:
        return f"sum(increase({name}_sum{{{SEL}}}[$period]))"

    inp, out = increase("infer_service_input_token_quantity"), increase("infer_service_output_token_quantity")
    return Row(
        "Tokens",
        (
            PanelSpec(
                "Service token increment",
                (Query(inp, "input"), Query(out, "output"), Query(f"{inp} + {out}", "service")),
                "short",
                "Token increment in the statistical period: total input, total output, and total service "
                "tokens = input + output. Increments can be 0 when a period has few samples.",
            ),
            PanelSpec(
                "Tokens generated",
                (Query(f"sum(increase(infer_service_token_count{{{SEL}}}[$period]))", "generated"),),
                "short",
                "Number of tokens generated by the service in the statistical period.",
            ),
            PanelSpec(
                "Service input tokens",
                quantile_queries("infer_service_input_token_quantity", SEL),
                "short",
                f"Input tokens per request: average, TP50, TP90, TP99. {TPXX}",
            ),
            PanelSpec(
                "Output tokens",
                quantile_queries("infer_service_output_token_quantity", SEL),
                "short",
                f"Output tokens per request: average, TP50, TP90, TP99. {TPXX}",
            ),
        ),
    )


def service_dashboard() -> Dashboard:
    """The service overview value; ``dashboards.build`` turns it into JSON."""
    return dashboard(
        title="infersight / Inference service",
        uid="infersight-service",
        description="One inference service: every metric of the console's Monitoring tab.",
        rows=[
            _requests(),
            _latency(),
            slo_row(SEL),
            _tokens(),
            cost_row(SEL),
            role_row(SEL),
            Row("Resources", tuple(resource_panels(SEL, by_pod=False))),
        ],
        level=SERVICE,
    )
