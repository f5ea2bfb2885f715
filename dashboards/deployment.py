"""Deployment and instance view: resource use per pod (SEED-SPEC §1.10.3 drill-down).

Below service level the console shows "only resource usage metrics"; this view adds how many
pods are scraped and healthy, so an empty resource panel can be told from a dead pod.
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from dashboards.frame import dashboard
from dashboards.panels import PanelSpec, Query, Row, selector
from dashboards.resources import resource_panels
from dashboards.variables import DEPLOYMENT

SEL = selector(*DEPLOYMENT.labels)


def deployment_dashboard() -> Dashboard:
    """Deployment → instance drill-down, one line per pod."""
    pods = PanelSpec(
        "Pods up",
        (
            Query(f"sum by (instance_name) (up{{{SEL}}})", "{{instance_name}} up"),
            Query(f"count by (instance_name) (up{{{SEL}}})", "{{instance_name}} scraped"),
        ),
        "short",
        "Pods per instance whose last scrape succeeded, against all scraped pods.",
    )
    return dashboard(
        title="infersight / Deployment and instance",
        uid="infersight-deployment",
        description="Resource usage of a deployment's pods, by instance (the console's drill-down).",
        rows=[Row("Pods", (pods,)), Row("Resources by pod", tuple(resource_panels(SEL, by_pod=True)))],
        level=DEPLOYMENT,
    )
