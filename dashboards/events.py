"""Events and alerts overview: what fired, since when, and which targets failed their scrape.

Alerts come from the ``ALERTS`` and ``ALERTS_FOR_STATE`` series that infersight's evaluator writes
(as Prometheus does), so this view works with Prometheus-evaluated rules too. Service and pod
events (SEED-SPEC §3) come from ``infersight_events_total`` (occurrences by kind, type and reason,
counted since the server started; the events API lists each one with its message).
"""

from __future__ import annotations

from grafanalib.core import Dashboard

from dashboards.frame import dashboard
from dashboards.panels import PanelSpec, Query, Row, selector
from dashboards.pod import scrape_panels
from dashboards.variables import SERVICE

SEL = selector(*SERVICE.labels)


def events_dashboard() -> Dashboard:
    """Alerts by state and severity, how long each has been active, and scrape failures."""
    alerts = (
        PanelSpec(
            "Alerts by state",
            (Query(f"sum by (alertname, alertstate) (ALERTS{{{SEL}}})", "{{alertname}} {{alertstate}}"),),
            "short",
            "Active alerts of the selected services: pending (waiting out `for`) and firing.",
        ),
        PanelSpec(
            "Firing alerts by severity",
            (Query(f'sum by (severity) (ALERTS{{alertstate="firing", {SEL}}})', "{{severity}}"),),
            "short",
            "Firing alerts counted by their severity label.",
            ((1.0, "red"),),
        ),
        PanelSpec(
            "Active alerts",
            (Query(f"ALERTS{{{SEL}}}", instant=True),),
            "short",
            "Every active alert with its labels, as the evaluator last wrote it.",
            table=True,
            width=24,
        ),
        PanelSpec(
            "Time active",
            (
                Query(
                    f"time() - max by (alertname, service_id) (ALERTS_FOR_STATE{{{SEL}}})",
                    "{{alertname}} {{service_id}}",
                ),
            ),
            "s",
            "Seconds since each alert became active (ALERTS_FOR_STATE holds the start time).",
        ),
        PanelSpec(
            "Targets down",
            (Query(f"sum by (service_id) (1 - up{{{SEL}}})", "{{service_id}}"),),
            "short",
            "Pods whose last scrape failed.",
            ((1.0, "red"),),
        ),
    )
    events = f"infersight_events_total{{{SEL}}}"
    event_panels = (
        PanelSpec(
            "Events by type",
            (Query(f"sum by (kind, type) (max_over_time({events}[$period]))", "{{kind}} {{type}}"),),
            "short",
            "Service events (Normal / Exception / Warning) and pod events (Normal / Alarm), counted since "
            "infersight started.",
        ),
        PanelSpec(
            "Events by reason",
            (Query(f"sum by (kind, type, reason) (max_over_time({events}[$__range]))", instant=True),),
            "short",
            "Every event reason seen in the time range with its occurrences (the guide's Events tab "
            "folds identical events the same way).",
            table=True,
        ),
    )
    return dashboard(
        title="infersight / Alerts and events",
        uid="infersight-events",
        description="Alerts of the selected services and the health of their scrapes.",
        rows=[Row("Alerts", alerts), Row("Events", event_panels), Row("Scrape health", scrape_panels(SEL))],
        level=SERVICE,
    )
