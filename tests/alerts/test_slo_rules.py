"""Burn-rate rules per SLO: promtool accepts them and their generated tests pass on Prometheus'
engine and on infersight's evaluator; a wrong expectation fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from alerts.rules import from_yaml, to_yaml
from alerts.slo_rules import (
    RULES_FILE,
    TESTS_FILE,
    build_slo_rules,
    build_slo_tests,
    scaled_ms,
    write_slo_rules,
)
from model.slo import Slo
from tests.alerts.promtool_runner import run_test_file
from tests.alerts.tools import require

SLOS = (
    Slo("chat", "svc-1", ttft_ms=500, tpot_ms=50),  # 99 % over 28 days
    Slo("loose", "svc.2", project_id="p1", cost_ms=1000, objective=0.9, period_s=7 * 86400),
    Slo("demo", "svc-3", ttft_ms=100, objective=0.95, period_s=3 * 86400),
)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=540)


def test_windows_scale_with_the_period() -> None:
    thirty = Slo("a", "s", ttft_ms=1, period_s=30 * 86400)
    assert scaled_ms(3_600_000, thirty) == 3_600_000  # the workbook's own table
    assert scaled_ms(3_600_000, SLOS[0]) == 56 * 60_000
    assert scaled_ms(300_000, Slo("b", "s", ttft_ms=1, period_s=3600)) == 30_000  # the floor


def test_every_slo_gets_a_fast_and_a_slow_alert() -> None:
    rules = build_slo_rules(SLOS)
    assert [len(g.rules) for g in rules.groups] == [2, 2, 2]
    assert {r.alert: r.labels["severity"] for r in rules.groups[0].rules} == {
        "InferSloFastBurn": "critical",
        "InferSloSlowBurn": "warning",
    }
    assert from_yaml(to_yaml(rules)) == rules
    assert 'project_id="p1"' in rules.groups[1].rules[0].expr  # a project's SLO reads its series only


@pytest.mark.integration
def test_promtool_accepts_the_rules_and_their_tests_pass(tmp_path: Path) -> None:
    write_slo_rules(SLOS, tmp_path)
    check = promtool("check", "rules", RULES_FILE, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    test = promtool("test", "rules", TESTS_FILE, cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr


@pytest.mark.integration
def test_a_wrong_expectation_fails_promtool(tmp_path: Path) -> None:
    """The generated tests can fail: the rules of a 99 % SLO against the tests of a 50 % one
    (whose fast burn needs more than every request bad, so it expects no alert)."""
    write_slo_rules(SLOS[:1], tmp_path)
    wrong = build_slo_tests((Slo("chat", "svc-1", ttft_ms=500, tpot_ms=50, objective=0.5),))
    (tmp_path / TESTS_FILE).write_text(yaml.safe_dump(wrong, sort_keys=False, width=1000))
    assert promtool("test", "rules", TESTS_FILE, cwd=tmp_path).returncode != 0
    assert run_test_file(tmp_path / TESTS_FILE) != []


def test_the_generated_tests_pass_on_infersights_evaluator(tmp_path: Path) -> None:
    write_slo_rules(SLOS, tmp_path)
    assert run_test_file(tmp_path / TESTS_FILE) == []
