"""Multi-window, multi-burn-rate alerts per SLO (Google SRE workbook, "Alerting on SLOs", §6).

The burn rate is the bad share of requests divided by the error budget (1 - objective): at 1 the
budget lasts exactly the SLO's period. Each alert needs a long window (is it serious?) and a short
one (is it still happening? it makes the alert resolve soon after the misses stop) above the same
burn rate. The workbook's table, written for a 30-day period:

| alert            | long | short | burn rate | budget spent in the long window |
|------------------|------|-------|-----------|---------------------------------|
| fast (critical)  | 1h   | 5m    | 14.4      | 2 %                             |
|                  | 6h   | 30m   | 6         | 5 %                             |
| slow (warning)   | 1d   | 2h    | 3         | 10 %                            |
|                  | 3d   | 6h    | 1         | 10 %                            |

For another period the windows scale with it (a 28-day SLO pages on 56m and 4m40s), so each line
still means the same share of the budget; no window is shorter than ``MIN_WINDOW_MS`` (three
10-second samples). A burn rate that would need more than every request bad (14.4 with a 90 %
objective) cannot fire; the rule is kept so the file has the same shape for every SLO.

The rules read ``infersight_slo_requests_total`` (collector/slo.py) with plain ``rate`` (no
recording rules: infersight's evaluator runs alerting rules only), so the same file loads into
Prometheus, Mimir or infersight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alerts.projects import GLOBAL, OwnedGroup
from alerts.rules import AlertRule, RuleFile, RuleGroup, format_duration, to_yaml
from model.slo import Slo

SERIES = "infersight_slo_requests_total"
BY = "project_id, service_id, service_name, slo"
PERIOD_30D_MS = 30 * 86_400_000
MIN_WINDOW_MS = 30_000
TEST_INTERVAL_MIN = 1
SUMMARY = "SLO {{ $labels.slo }} of service {{ $labels.service_id }} burns its error budget %s"
VALUE = "{{ $value | humanizePercentage }}"
RULES_FILE = "infersight.slo.rules.yml"
TESTS_FILE = "infersight.slo.rules.test.yml"


@dataclass(frozen=True, slots=True)
class BurnWindow:
    long_ms: int
    short_ms: int
    burn_rate: float


@dataclass(frozen=True, slots=True)
class BurnAlert:
    alert: str
    severity: str
    windows: tuple[BurnWindow, ...]
    pace: str


ALERTS = (
    BurnAlert(
        "InferSloFastBurn",
        "critical",
        (BurnWindow(3_600_000, 300_000, 14.4), BurnWindow(21_600_000, 1_800_000, 6.0)),
        "fast",
    ),
    BurnAlert(
        "InferSloSlowBurn",
        "warning",
        (BurnWindow(86_400_000, 7_200_000, 3.0), BurnWindow(259_200_000, 21_600_000, 1.0)),
        "slowly",
    ),
)


def scaled_ms(window_ms: int, slo: Slo) -> int:
    """A workbook window (for 30 days) for ``slo``'s period, whole seconds, at least MIN_WINDOW_MS."""
    return max(MIN_WINDOW_MS, round(window_ms * slo.period_s * 1000 / PERIOD_30D_MS / 1000) * 1000)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _selector(slo: Slo, *extra: str) -> str:
    parts = [f'slo="{_quote(slo.name)}"', f'service_id="{_quote(slo.service_id)}"']
    if slo.project_id:
        parts.append(f'project_id="{_quote(slo.project_id)}"')
    return "{" + ", ".join([*parts, *extra]) + "}"


def bad_ratio(slo: Slo, window: str) -> str:
    """The bad share of ``slo``'s requests over ``window`` (PromQL)."""
    bad = SERIES + _selector(slo, 'result="bad"')
    every = f"{SERIES}{_selector(slo)}"
    return f"sum by ({BY}) (rate({bad}[{window}])) / sum by ({BY}) (rate({every}[{window}]))"


def _condition(slo: Slo, window: BurnWindow) -> str:
    limit = f"{window.burn_rate * slo.error_budget:.6g}"
    long_w = format_duration(scaled_ms(window.long_ms, slo))
    short_w = format_duration(scaled_ms(window.short_ms, slo))
    return f"({bad_ratio(slo, long_w)} > {limit} and {bad_ratio(slo, short_w)} > {limit})"


def _objective_text(slo: Slo) -> str:
    days, rest = divmod(slo.period_s, 86400)
    period = f"{days}d" if days and not rest else format_duration(slo.period_s * 1000)
    return f"{slo.objective * 100:.6g} % over {period}"


def burn_rule(slo: Slo, spec: BurnAlert) -> AlertRule:
    windows = ", ".join(
        f"{w.burn_rate:g}x over {format_duration(scaled_ms(w.long_ms, slo))}"
        f" and {format_duration(scaled_ms(w.short_ms, slo))}"
        for w in spec.windows
    )
    return AlertRule(
        alert=spec.alert,
        expr=" or ".join(_condition(slo, w) for w in spec.windows),
        # the SLO's own labels too: rules differ by labels, as promtool's lint wants
        labels={"severity": spec.severity, "slo": slo.name, "service_id": slo.service_id},
        annotations={
            "summary": SUMMARY % spec.pace,
            "description": (
                f"{VALUE} of requests missed a target; objective {_objective_text(slo)};"
                f" burn rate above {windows} (multi-window, multi-burn-rate)."
            ),
            "runbook": "docs/slo.md#when-a-burn-rate-alert-fires",
        },
    )


def group_name(slo: Slo) -> str:
    return (
        f"infersight-slo-{slo.name}" if not slo.project_id else f"infersight-slo-{slo.project_id}-{slo.name}"
    )


def slo_group(slo: Slo) -> RuleGroup:
    return RuleGroup(group_name(slo), tuple(burn_rule(slo, spec) for spec in ALERTS))


def build_slo_rules(slos: Sequence[Slo]) -> RuleFile:
    rules = RuleFile(tuple(slo_group(s) for s in slos))
    rules.validate()
    return rules


def owned_groups(slos: Sequence[Slo]) -> tuple[OwnedGroup, ...]:
    """Each SLO's group, owned by its project (evaluated on that project's series only)."""
    return tuple(OwnedGroup(slo_group(s), s.project_id or GLOBAL) for s in slos)


def _test_case(slo: Slo) -> dict[str, Any]:
    """Every request bad for ``bad_min`` minutes, then every request good: each alert whose burn
    rate can be reached fires, then resolves once its short window holds no bad request."""
    bad_min = 30
    longest_short = max(scaled_ms(w.short_ms, slo) for spec in ALERTS for w in spec.windows)
    resolved_min = bad_min + -(-longest_short // 60_000) + 2
    minutes = resolved_min + 1
    labels = {"project_id": slo.project_id or "p-test", "service_id": slo.service_id, "slo": slo.name}
    per_min = 60
    good = f"0+0x{bad_min} 0+{per_min}x{minutes - bad_min}"
    bad = f"0+{per_min}x{bad_min} {per_min * bad_min}+0x{minutes - bad_min}"
    healthy = {**labels, "service_id": f"{slo.service_id}-other"}
    series = [
        {"series": _series_text({**labels, "result": "good"}), "values": good},
        {"series": _series_text({**labels, "result": "bad"}), "values": bad},
        {"series": _series_text({**healthy, "result": "good"}), "values": f"0+{per_min}x{minutes}"},
        {"series": _series_text({**healthy, "result": "bad"}), "values": f"0+0x{minutes}"},
    ]
    checks: list[dict[str, Any]] = []
    for spec in ALERTS:
        reachable = any(w.burn_rate * slo.error_budget < 1 for w in spec.windows)
        rule = burn_rule(slo, spec)
        firing = {
            "exp_labels": {**labels, "severity": spec.severity},
            "exp_annotations": {
                "summary": rule.annotations["summary"]
                .replace("{{ $labels.slo }}", slo.name)
                .replace("{{ $labels.service_id }}", slo.service_id),
                "description": rule.annotations["description"].replace(
                    "{{ $value | humanizePercentage }}", "100%"
                ),
                "runbook": rule.annotations["runbook"],
            },
        }
        checks.append(
            {
                "eval_time": f"{bad_min // 2}m",
                "alertname": spec.alert,
                "exp_alerts": [firing] if reachable else [],
            }
        )
        checks.append({"eval_time": f"{resolved_min}m", "alertname": spec.alert, "exp_alerts": []})
    return {"interval": f"{TEST_INTERVAL_MIN}m", "input_series": series, "alert_rule_test": checks}


def _series_text(labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{_quote(v)}"' for k, v in sorted(labels.items()))
    return f"{SERIES}{{{inner}}}"


def build_slo_tests(slos: Sequence[Slo], rules_file: str = RULES_FILE) -> dict[str, Any]:
    """A ``promtool test rules`` document: per SLO, its alerts fire while every request is bad
    and resolve after the misses stop; another service's good traffic never fires."""
    return {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": [_test_case(s) for s in slos]}


def write_slo_rules(slos: Sequence[Slo], out_dir: Path) -> list[Path]:
    """Write the SLO rule file and its promtool test file into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rules_path, tests_path = out_dir / RULES_FILE, out_dir / TESTS_FILE
    rules_path.write_text(to_yaml(build_slo_rules(slos)))
    tests_path.write_text(yaml.safe_dump(build_slo_tests(slos), sort_keys=False, width=1000))
    return [rules_path, tests_path]
