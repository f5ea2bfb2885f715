"""Generated rule packs: committed output current, promtool check and unit tests, YAML model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from alerts.generate import RULES_FILE, TESTS_FILE, RulesConfig, build_rules, build_tests, write_rules
from alerts.rules import from_yaml, to_yaml
from model.errors import ConfigError
from tests.alerts.tools import require

RULES_DIR = Path(__file__).resolve().parents[2] / "alerts" / "rules"
OVERRIDES = {
    "services": [
        {"service_id": "svc-x", "ttft_tp99_ms": 5000, "utilization_percent": 95, "latency_for": "2m"},
        {"service_id": "svc.y", "error_ratio": 0.2, "health_for": "90s", "tpot_tp99_ms": 50},
    ]
}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=540)


def test_committed_rules_are_current() -> None:
    assert (RULES_DIR / RULES_FILE).read_text() == to_yaml(build_rules(RulesConfig()))
    assert yaml.safe_load((RULES_DIR / TESTS_FILE).read_text()) == build_tests(RulesConfig())


def test_every_rule_has_a_promtool_test() -> None:
    rules = {r.alert for g in build_rules(RulesConfig()).groups for r in g.rules}
    tested = {c["alertname"] for t in build_tests(RulesConfig())["tests"] for c in t["alert_rule_test"]}
    assert rules == tested
    assert len(rules) == 16


def test_rules_carry_severity_and_texts() -> None:
    for group in build_rules(RulesConfig.from_dict(OVERRIDES)).groups:
        for rule in group.rules:
            assert rule.labels["severity"] in {"warning", "critical"}
            assert {"summary", "description", "runbook"} <= set(rule.annotations)


@pytest.mark.integration
def test_committed_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", RULES_FILE, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_committed_rules_pass_their_promtool_unit_tests() -> None:
    result = promtool("test", "rules", TESTS_FILE, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_per_service_overrides_pass_promtool(tmp_path: Path) -> None:
    write_rules(RulesConfig.from_dict(OVERRIDES), tmp_path)
    check = promtool("check", "rules", RULES_FILE, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    test = promtool("test", "rules", TESTS_FILE, cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr


def test_yaml_round_trip() -> None:
    rules = build_rules(RulesConfig.from_dict(OVERRIDES))
    assert from_yaml(to_yaml(rules)) == rules


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("groups: [{name: g, rules: [{alert: A, expr: 'up =='}]}]", "groups[0].rules[0].expr"),
        ("groups: [{name: g, rules: [{alert: 'a b', expr: up}]}]", "groups[0].rules[0].alert"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, for: 5x}]}]", "groups[0].rules[0].for"),
        (
            "groups: [{name: g, rules: [{alert: A, expr: up, annotations: {s: '{{ .Foo }}'}}]}]",
            "annotations.s",
        ),
        ("groups: [{name: g, rules: []}, {name: g, rules: []}]", "groups[1].name"),
        ("groups: [{name: g, rules: [{record: r, expr: up}]}]", "recording rules"),
    ],
)
def test_bad_rule_files_name_the_problem(text: str, where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
        from_yaml(text)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"defaults": {"error_ratio": 2}}, "alerts.defaults.error_ratio"),
        ({"services": [{"service_id": "s", "ttft_ms": 1}]}, r"alerts.services\[0\].ttft_ms"),
        ({"services": [{"ttft_tp99_ms": 1}]}, r"alerts.services\[0\].service_id"),
        ({"packs": ["nope"]}, "alerts.packs"),
        ({"defaults": {"latency_for": "soon"}}, "alerts.defaults.latency_for"),
    ],
)
def test_bad_threshold_config_names_the_key(data: dict, where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        RulesConfig.from_dict(data)
