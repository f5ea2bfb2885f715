"""Pod view: one pod's resources and the health of its scrape.

The sidecar's own series (``up``, ``scrape_duration_seconds``, ``infersight_scrape_body_bytes``,
``infersight_scrape_errors_total``) say whether the pod's figures can be trusted; the guide caps
a scrape at 32 KB (§1.10.4), drawn as the red line.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from dashboards.frame import dashboard
from dashboards.panels import PanelSpec, Query, Row, selector
from dashboards.resources import resource_panels
from dashboards.variables import POD

SEL = selector(*POD.labels)
SCRAPE_LIMIT_BYTES = 32 * 1024


def scrape_panels(sel: str) -> tuple[PanelSpec, ...]:
    """Scrape health panels over targets matching ``sel``, one line per pod."""
    return (
        PanelSpec(
            "Target up",
            (Query(f"max by (source) (up{{{sel}}})", "{{source}}"),),
            "short",
            "1 when the pod's last scrape succeeded, 0 when it failed.",
            max_value=1,
        ),
        PanelSpec(
            "Scrape duration",
            (Query(f"max by (source) (scrape_duration_seconds{{{sel}}})", "{{source}}"),),
            "s",
            "Wall time of each scrape of the pod's /metrics.",
        ),
        PanelSpec(
            "Scrape body size",
            (Query(f"max by (source) (infersight_scrape_body_bytes{{{sel}}})", "{{source}}"),),
            "bytes",
            "Size of each /metrics response; the guide allows at most 32 KB.",
            ((float(SCRAPE_LIMIT_BYTES), "red"),),
        ),
        PanelSpec(
            "Scrape errors",
            (
                Query(
                    f"sum by (reason) (increase(infersight_scrape_errors_total{{{sel}}}[$period]))",
                    "{{reason}}",
                ),
            ),
            "short",
            "Failed scrapes in the statistical period, by reason.",
        ),
    )


def pod_dashboard() -> Dashboard:
    """One pod: resources and scrape health."""
    return dashboard(
        title="infersight / Pod",
        uid="infersight-pod",
        description="One pod: resource usage and the health of its scrape.",
        rows=[Row("Resources", tuple(resource_panels(SEL, by_pod=True))), Row("Scrape", scrape_panels(SEL))],
        level=POD,
    )
