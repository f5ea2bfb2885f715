"""Target health: target down, scrape failing, scrape over 32 KB, restarts, no healthy pod."""

from __future__ import annotations

from alerts.packs.spec import (
    POD_KEYS,
    SERVICE_KEYS,
    InputSeries,
    RuleSpec,
    Scenario,
    constant,
    keep,
    matchers,
)
from alerts.thresholds import Thresholds

POD_BY = ", ".join(POD_KEYS)
HEALTH_RUNBOOK = (
    "Check the health logs and exception records in the monitoring tab of the service details page; "
    "a pod failing its probes is restarted or rebuilt."
)


def _up_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    del t
    series = (InputSeries("up", bad, "1 1 0x60"), InputSeries("up", good, "1x62"))
    return Scenario(series, 2, constant(0.0), dict(bad))


def _no_healthy_pod_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    del t
    other_pod = {**bad, "source": bad["source"] + "-b"}
    series = (
        InputSeries("up", bad, "1 1 0x60"),
        InputSeries("up", other_pod, "1 1 0x60"),
        InputSeries("up", good, "0x62"),
        InputSeries("up", {**good, "source": good["source"] + "-b"}, "1x62"),
    )
    return Scenario(series, 2, constant(0.0), keep(bad, SERVICE_KEYS))


def _scrape_errors_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    del t
    name = "infersight_scrape_errors_total"
    series = (
        InputSeries(name, {**bad, "reason": "timeout"}, "0 0 1+1x60"),
        InputSeries(name, {**good, "reason": "timeout"}, "0x62"),
    )
    # increase over 5m of +1/min, extrapolated to the window as Prometheus does: 5
    return Scenario(series, 2, constant(5.0), {**keep(bad, POD_KEYS), "reason": "timeout"}, settle_min=8)


def _body_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    big = t.max_scrape_bytes * 1.25
    series = (
        InputSeries("infersight_scrape_body_bytes", bad, f"{big:g}x60"),
        InputSeries("infersight_scrape_body_bytes", good, f"{t.max_scrape_bytes / 4:g}x60"),
    )
    return Scenario(series, 0, constant(big), keep(bad, POD_KEYS))


def _restart_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    del t
    # the bad pod's engine exports a start time, and its sidecar counts the same restart: one alert
    # (``or`` keeps the left side's), value 1; the healthy pod's sidecar restarted (its count went
    # back to 0), which is no restart of the engine
    series = (
        InputSeries("process_start_time_seconds", bad, "1000x3 1300x60"),
        InputSeries("infersight_target_restarts_total", bad, "0x3 1x60"),
        InputSeries("process_start_time_seconds", good, "1000x60"),
        InputSeries("infersight_target_restarts_total", good, "2x3 0x60"),
    )
    return Scenario(series, 4, constant(1.0), dict(bad))


def _restart_expr(sel: str, t: Thresholds) -> str:
    """A start time that changed, or (for engines without one) the sidecar's restart count going
    up: it reads restarts from the target's counters all resetting (``collector/restarts.py``)."""
    window = f"[{int(t.restart_window_s)}s]"
    return (
        f"changes(process_start_time_seconds{matchers(sel)}{window}) > 0"
        f" or round(increase(infersight_target_restarts_total{matchers(sel)}{window})) > 0"
    )


HEALTH = (
    RuleSpec(
        "InferTargetDown",
        "critical",
        lambda sel, t: f"up{matchers(sel)} == 0",
        "health_for",
        "Pod {{ $labels.source }} of service {{ $labels.service_id }} cannot be scraped",
        "The sidecar's scrape of pod {{ $labels.source }} (instance {{ $labels.instance_name }}) has "
        "failed (up = 0).",
        HEALTH_RUNBOOK,
        _up_scenario,
    ),
    RuleSpec(
        "InferServiceNoHealthyPod",
        "critical",
        lambda sel, t: f"sum by (project_id, service_id) (up{matchers(sel)}) == 0",
        "health_for",
        "Service {{ $labels.service_id }} has no healthy pod",
        "No pod of service {{ $labels.service_id }} (project {{ $labels.project_id }}) answers its scrape: "
        "the service cannot serve requests.",
        HEALTH_RUNBOOK,
        _no_healthy_pod_scenario,
    ),
    RuleSpec(
        "InferScrapeFailing",
        "warning",
        lambda sel, t: (
            f"sum by ({POD_BY}, reason) (increase(infersight_scrape_errors_total{matchers(sel)}[5m])) > 0"
        ),
        "health_for",
        "Scrapes of pod {{ $labels.source }} fail ({{ $labels.reason }})",
        "{{ $value | humanize }} scrapes of pod {{ $labels.source }} failed with reason "
        "{{ $labels.reason }} in the last 5 minutes.",
        "The metrics endpoint must answer on port 8000 or 9090 at path /metrics in Prometheus text format; "
        "check the custom metric settings of the deployment.",
        _scrape_errors_scenario,
    ),
    RuleSpec(
        "InferScrapeBodyTooLarge",
        "warning",
        lambda sel, t: (
            f"max by ({POD_BY}) (max_over_time(infersight_scrape_body_bytes{matchers(sel)}[5m]))"
            f" > {t.max_scrape_bytes:g}"
        ),
        "health_for",
        "Metrics of pod {{ $labels.source }} exceed %(max_scrape_bytes)g bytes",
        "The /metrics response of pod {{ $labels.source }} is {{ $value | humanize1024 }}B; the limit is "
        "%(max_scrape_bytes)g bytes and larger responses are not collected.",
        "The custom metrics response may not exceed 32 KB: drop unused series or labels from the endpoint.",
        _body_scenario,
    ),
    RuleSpec(
        "InferPodRestarted",
        "warning",
        _restart_expr,
        "",  # fires at once: a restart has no duration to wait out
        "Engine of pod {{ $labels.source }} restarted",
        "The inference engine in pod {{ $labels.source }} of service {{ $labels.service_id }} restarted "
        "{{ $value }} time(s) in the last %(restart_window_s)g s.",
        "Check the pod events (BackOff, CrashLoopBackOff, Unhealthy) and the pod's logs for the exit reason.",
        _restart_scenario,
    ),
)
