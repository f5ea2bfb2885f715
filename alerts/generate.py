"""Rule packs + thresholds → a Prometheus rule file, and the ``promtool test rules`` file that proves it.

Per-service thresholds become rules of their own: the default rule excludes every overridden
service (``service_id!~"a|b"``) and each override gets ``service_id="a"`` with its thresholds, under
the same alert name, so Alertmanager routes them alike.

>>> config = RulesConfig.from_dict({"services": [{"service_id": "s1", "ttft_tp99_ms": 5000}]})
>>> [r.expr.count('service_id') for r in build_rules(config).groups[0].rules[:2]]
[1, 1]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerts.packs import PACKS, RuleSpec
from alerts.rules import AlertRule, RuleFile, RuleGroup, to_yaml
from alerts.template import expand
from alerts.thresholds import Thresholds
from model.errors import ConfigError

RULES_FILE = "infersight.rules.yml"
TESTS_FILE = "infersight.rules.test.yml"
MAX_TEST_MIN = 55  # scenario series run for an hour


@dataclass(frozen=True, slots=True)
class ServiceOverride:
    service_id: str
    thresholds: Thresholds


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """``alerts`` settings that shape the rules: packs, default thresholds, per-service overrides."""

    defaults: Thresholds = field(default_factory=Thresholds)
    services: tuple[ServiceOverride, ...] = ()
    packs: tuple[str, ...] = tuple(PACKS)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "alerts") -> RulesConfig:
        unknown = set(data) - {"defaults", "services", "packs"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key")
        defaults = Thresholds().replace_from(data.get("defaults") or {}, f"{where}.defaults")
        services = []
        for i, entry in enumerate(data.get("services") or []):
            entry = dict(entry)
            service_id = str(entry.pop("service_id", ""))
            if not service_id:
                raise ConfigError(f"{where}.services[{i}].service_id: required")
            services.append(
                ServiceOverride(service_id, defaults.replace_from(entry, f"{where}.services[{i}]"))
            )
        packs = tuple(PACKS) if data.get("packs") is None else tuple(data["packs"])
        for pack in packs:
            if pack not in PACKS:
                raise ConfigError(f"{where}.packs: unknown pack {pack!r} (known: {', '.join(PACKS)})")
        return cls(defaults, tuple(services), packs)

    def scopes(self) -> list[tuple[str, Thresholds, str | None]]:
        """(selector, thresholds, overridden service or None) for the default rule and each override."""
        excluded = "|".join(_regex_literal(s.service_id) for s in self.services)
        default_sel = f'service_id!~"{excluded}"' if excluded else ""
        return [(default_sel, self.defaults, None)] + [
            (f'service_id="{s.service_id}"', s.thresholds, s.service_id) for s in self.services
        ]


def _regex_literal(text: str) -> str:
    """``text`` matched literally by an RE2 regex inside a PromQL double-quoted string."""
    escaped = re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


def _static_labels(spec: RuleSpec, service_id: str | None) -> dict[str, str]:
    # an override's rule names its service: rules differ by labels, as promtool's lint wants
    return {"severity": spec.severity, **({"service_id": service_id} if service_id else {})}


def _rule(spec: RuleSpec, sel: str, t: Thresholds, service_id: str | None) -> AlertRule:
    return AlertRule(
        alert=spec.alert,
        expr=spec.expr(sel, t),
        for_ms=int(getattr(t, spec.for_field)) if spec.for_field else 0,
        keep_firing_for_ms=t.keep_firing_for,
        labels=_static_labels(spec, service_id),
        annotations=spec.texts(t),
    )


def build_rules(config: RulesConfig) -> RuleFile:
    groups = tuple(
        RuleGroup(
            f"infersight-{pack}",
            tuple(
                _rule(spec, sel, t, service) for spec in PACKS[pack] for sel, t, service in config.scopes()
            ),
        )
        for pack in config.packs
    )
    rules = RuleFile(groups)
    rules.validate()
    return rules


def _target(service_id: str, pod: str) -> dict[str, str]:
    return {
        "project_id": "p-test",
        "service_id": service_id,
        "service_name": f"name-{service_id}",
        "group_id": f"{service_id}-group-0",
        "instance_name": f"{service_id}-instance-0",
        "source": f"{service_id}-{pod}",
    }


def _test_case(spec: RuleSpec, t: Thresholds, bad_service: str | None) -> dict[str, Any]:
    scenario = spec.scenario(t, _target(bad_service or "svc-a", "pod-0"), _target("svc-healthy", "pod-0"))
    for_min = math.ceil((getattr(t, spec.for_field) if spec.for_field else 0) / 60_000)
    if scenario.active_min + for_min > MAX_TEST_MIN:
        raise ConfigError(f"alerts: {spec.alert} waits {for_min} min; the rule tests cover {MAX_TEST_MIN}")
    eval_min = max(scenario.active_min + for_min + 1, scenario.settle_min)
    value = scenario.value(eval_min)
    labels = {**scenario.labels, **_static_labels(spec, bad_service)}
    annotations = {k: expand(v, scenario.labels, value) for k, v in spec.texts(t).items()}
    checks: list[dict[str, Any]] = []
    # before firing: still pending (for > 0) or not yet true
    quiet_min = scenario.active_min + for_min - 1
    if quiet_min >= 0:
        checks.append({"eval_time": f"{quiet_min}m", "alertname": spec.alert, "exp_alerts": []})
    checks.append(
        {
            "eval_time": f"{eval_min}m",
            "alertname": spec.alert,
            "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
        }
    )
    return {
        "interval": "1m",
        "input_series": [{"series": s.text(), "values": s.values} for s in scenario.series],
        "alert_rule_test": checks,
    }


def build_tests(config: RulesConfig, rules_file: str = RULES_FILE) -> dict[str, Any]:
    """A ``promtool test rules`` document: for every rule and scope, when it must and must not fire."""
    tests = [
        _test_case(spec, t, service)
        for pack in config.packs
        for spec in PACKS[pack]
        for _, t, service in config.scopes()
    ]
    return {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": tests}


def write_rules(config: RulesConfig, out_dir: Path) -> list[Path]:
    """Write the rule file and its test file into ``out_dir``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rules_path, tests_path = out_dir / RULES_FILE, out_dir / TESTS_FILE
    rules_path.write_text(to_yaml(build_rules(config)))
    tests_path.write_text(yaml.safe_dump(build_tests(config), sort_keys=False, width=1000))
    return [rules_path, tests_path]
