"""Prometheus rule groups as values, and their YAML (the format Prometheus, Mimir and infersight load).

>>> rule = AlertRule("TargetDown", "up == 0", for_ms=60_000, labels={"severity": "critical"})
>>> to_yaml(RuleFile((RuleGroup("health", (rule,)),)))[:24]
'groups:\\n- name: health\\n  '
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from alerts.template import TemplateError, check
from model.durations import parse_duration_ms
from model.errors import ConfigError
from model.yaml_text import load_yaml
from query.promql.errors import PromQLError
from query.promql.parse import parse_expr

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION_UNITS = (
    ("y", 31_536_000_000),
    ("w", 604_800_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)


def format_duration(ms: int) -> str:
    """Prometheus' ``model.Duration`` text: ``5m``, ``1h30m``, ``0s``."""
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in _DURATION_UNITS:
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alerting rule; ``for_ms`` pending time, ``keep_firing_for_ms`` hold after the condition clears."""

    alert: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if not LABEL_NAME.match(self.alert):
            raise ConfigError(f"{where}.alert: {self.alert!r} is not a valid metric name")
        if not isinstance(self.expr, str):
            raise ConfigError(f"{where}.expr: expected a PromQL string")
        try:
            parse_expr(self.expr)  # the query API's text limits first, so no rule can stall the parser
        except PromQLError as error:
            raise ConfigError(f"{where}.expr: {error}") from error
        for kind, mapping in (("labels", self.labels), ("annotations", self.annotations)):
            for key, text in mapping.items():
                if not LABEL_NAME.match(key):
                    raise ConfigError(f"{where}.{kind}: {key!r} is not a valid label name")
                try:
                    check(text)
                except TemplateError as error:
                    raise ConfigError(f"{where}.{kind}.{key}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_ms:
            out["for"] = format_duration(self.for_ms)
        if self.keep_firing_for_ms:
            out["keep_firing_for"] = format_duration(self.keep_firing_for_ms)
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """Rules evaluated together every ``interval_ms`` (0: the evaluator's global interval)."""

    name: str
    rules: tuple[AlertRule, ...]
    interval_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.interval_ms:
            out["interval"] = format_duration(self.interval_ms)
        out["rules"] = [r.to_dict() for r in self.rules]
        return out


@dataclass(frozen=True, slots=True)
class RuleFile:
    groups: tuple[RuleGroup, ...]

    def validate(self) -> None:
        """Raise ConfigError naming the first bad group or rule (Prometheus rejects the same)."""
        names: set[str] = set()
        for g, group in enumerate(self.groups):
            if not group.name or group.name in names:
                raise ConfigError(f"groups[{g}].name: empty or repeated ({group.name!r})")
            names.add(group.name)
            for r, rule in enumerate(group.rules):
                rule.validate(f"groups[{g}].rules[{r}]")


def to_yaml(rules: RuleFile) -> str:
    """The rule file's YAML, keys in Prometheus' documented order."""
    text: str = yaml.safe_dump({"groups": [g.to_dict() for g in rules.groups]}, sort_keys=False, width=1000)
    return text


def _duration(value: Any, where: str) -> int:
    try:
        return parse_duration_ms(str(value)) if value is not None else 0
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from error


def _rule(data: dict[str, Any], where: str) -> AlertRule:
    unknown = set(data) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
    if "record" in data:
        raise ConfigError(f"{where}: recording rules are not supported, only alerting rules")
    if unknown or "alert" not in data or "expr" not in data:
        raise ConfigError(f"{where}: needs alert and expr; unknown keys {sorted(unknown)}")
    return AlertRule(
        alert=str(data["alert"]),
        expr=str(data["expr"]),
        for_ms=_duration(data.get("for"), f"{where}.for"),
        keep_firing_for_ms=_duration(data.get("keep_firing_for"), f"{where}.keep_firing_for"),
        labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
    )


def from_yaml(text: str) -> RuleFile:
    """Parse and validate a rule file; ConfigError names the bad key (``groups[0].rules[2].expr``)."""
    try:
        data = load_yaml(text) or {}
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(data, dict) or not isinstance(data.get("groups", []), list):
        raise ConfigError("groups: must be a list of rule groups")
    groups = []
    for g, group in enumerate(data.get("groups", [])):
        if not isinstance(group, dict) or not isinstance(group.get("rules") or [], list):
            raise ConfigError(f"groups[{g}]: a rule group (a mapping with a list of rules)")
        rules = tuple(_rule(r, f"groups[{g}].rules[{i}]") for i, r in enumerate(group.get("rules") or []))
        interval = _duration(group.get("interval"), f"groups[{g}].interval")
        groups.append(RuleGroup(str(group.get("name", "")), rules, interval))
    result = RuleFile(tuple(groups))
    result.validate()
    return result
