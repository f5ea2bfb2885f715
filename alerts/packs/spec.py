"""The shape of a rule in a pack, and of the scenario that tests it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerts.thresholds import Thresholds

# labels of a target, as the sidecar writes them on every series (T1-60/T1-61)
TARGET_LABELS = ("project_id", "service_id", "service_name", "group_id", "instance_name", "source")
SERVICE_KEYS = ("project_id", "service_id")
POD_KEYS = ("project_id", "service_id", "group_id", "instance_name", "source")


@dataclass(frozen=True, slots=True)
class InputSeries:
    """One promtool input series: metric name, labels, expanding notation (``0+10x20``)."""

    name: str
    labels: dict[str, str]
    values: str

    def text(self) -> str:
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}"


@dataclass(frozen=True, slots=True)
class Scenario:
    """Series sampled every minute for an hour: from minute ``active_min`` on, the rule's condition
    holds for the bad target only, with ``$value`` = ``value(minute)`` and labels ``labels``;
    ``value`` holds from ``settle_min`` on (windows filled)."""

    series: tuple[InputSeries, ...]
    active_min: int
    value: Callable[[int], float]
    labels: dict[str, str]
    settle_min: int = 0


def constant(value: float) -> Callable[[int], float]:
    return lambda minute: value


ScenarioBuilder = Callable[[Thresholds, dict[str, str], dict[str, str]], Scenario]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """An alert of a pack. Texts are Prometheus templates, with ``%(field)g`` for thresholds."""

    alert: str
    severity: str
    expr: Callable[[str, Thresholds], str]
    for_field: str
    summary: str
    description: str
    runbook: str
    scenario: ScenarioBuilder

    def texts(self, t: Thresholds) -> dict[str, str]:
        values: dict[str, Any] = dataclasses.asdict(t)
        return {
            "summary": self.summary % values,
            "description": self.description % values,
            "runbook": self.runbook % values,
        }


def keep(labels: dict[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k in keys}


def matchers(sel: str, *extra: str) -> str:
    """``{extra…, sel}`` with empty parts left out."""
    return "{" + ", ".join(p for p in (*extra, sel) if p) + "}"
