"""The evaluator on the PromQL engine: for, keep_firing_for, resolution, templating, ALERTS, restarts."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from alerts.evaluator import Evaluator
from alerts.generate import RULES_FILE, TESTS_FILE, RulesConfig, write_rules
from alerts.rules import AlertRule, RuleFile, RuleGroup
from alerts.state import AlertState
from model.series import Sample, is_stale_nan
from query.promql.engine import Engine
from store.memory import MemoryStore
from tests.alerts.promtool_runner import expand_values, run_test_file
from tests.alerts.test_rules import OVERRIDES, RULES_DIR
from tests.alerts.tools import require

MIN = 60_000
T0 = 1_700_000_000_000


class Recorder:
    """A write sink that also feeds the store, as the real evaluator writes ALERTS back."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.samples: list[Sample] = []

    def __call__(self, batch: list[Sample]) -> None:
        self.samples += batch
        for s in batch:
            self.store.append(dict(s.labels), s.ts_ms, s.value)


def _setup(rule: AlertRule, state: Path | None = None) -> tuple[MemoryStore, Evaluator, Recorder]:
    store = MemoryStore()
    recorder = Recorder(store)
    rules = RuleFile((RuleGroup("g", (rule,)),))
    ev = Evaluator(rules, Engine(store).instant, recorder, interval_ms=MIN, state_path=state)
    return store, ev, recorder


def _up(store: MemoryStore, values: list[float], pod: str = "p0") -> None:
    for i, v in enumerate(values):
        store.append({"__name__": "up", "service_id": "s1", "source": pod}, T0 + i * MIN, v)


RULE = AlertRule(
    "Down",
    "up == 0",
    for_ms=2 * MIN,
    labels={"severity": "critical", "pod": "{{ $labels.source }}"},
    annotations={"summary": "{{ $labels.service_id }}/{{ $labels.source }} is {{ $value }}"},
)


def _states(ev: Evaluator) -> list[str]:
    return [a.state.value for by_fp in ev.alerts.values() for a in by_fp.values()]


def test_pending_then_firing_after_for_then_resolved() -> None:
    store, ev, _ = _setup(RULE)
    _up(store, [1, 0, 0, 0, 0, 1, 1])
    seen = []
    for i in range(7):
        ev.evaluate(T0 + i * MIN)
        seen.append(_states(ev))
    assert seen == [[], ["pending"], ["pending"], ["firing"], ["firing"], ["inactive"], ["inactive"]]


def test_labels_and_annotations_are_templated() -> None:
    store, ev, _ = _setup(RULE)
    _up(store, [0, 0, 0])
    sent = [a for i in range(3) for a in ev.evaluate(T0 + i * MIN)]
    (alert,) = sent
    assert alert.labels == {
        "alertname": "Down",
        "severity": "critical",
        "pod": "p0",
        "service_id": "s1",
        "source": "p0",
    }
    assert alert.annotations == {"summary": "s1/p0 is 0"}


def test_keep_firing_for_holds_the_alert() -> None:
    rule = AlertRule("Down", "up == 0", keep_firing_for_ms=2 * MIN)
    store, ev, _ = _setup(rule)
    _up(store, [0, 1, 1, 1])
    states = []
    for i in range(4):
        ev.evaluate(T0 + i * MIN)
        states.append(_states(ev))
    assert states == [["firing"], ["firing"], ["firing"], ["inactive"]]


def test_alerts_series_and_staleness() -> None:
    store, ev, recorder = _setup(RULE)
    _up(store, [0, 0, 0, 1])
    for i in range(4):
        ev.evaluate(T0 + i * MIN)
    by_ts: dict[int, dict[str, float]] = {}
    for s in recorder.samples:
        labels = dict(s.labels)
        key = labels["__name__"] + "/" + labels.get("alertstate", "")
        by_ts.setdefault(s.ts_ms, {})[key] = s.value
    assert by_ts[T0] == {"ALERTS/pending": 1.0, "ALERTS_FOR_STATE/": T0 / 1000}
    assert by_ts[T0 + 2 * MIN]["ALERTS/firing"] == 1.0
    assert is_stale_nan(by_ts[T0 + 2 * MIN]["ALERTS/pending"])
    assert all(is_stale_nan(v) for v in by_ts[T0 + 3 * MIN].values())
    engine = Engine(store)
    firing = engine.instant('ALERTS{alertstate="firing"}', T0 + 2 * MIN)
    assert [s.labels["alertname"] for s in firing.samples] == ["Down"]


def test_notifications_resend_and_resolve_once() -> None:
    rule = AlertRule("Down", "up == 0")
    store, ev, _ = _setup(rule)
    _up(store, [0, 0, 0, 1, 1])
    sent = [[a.state.value for a in ev.evaluate(T0 + i * MIN // 2)] for i in range(4)]
    assert sent == [["firing"], [], ["firing"], []]
    assert [a.state for a in ev.evaluate(T0 + 3 * MIN)] == [AlertState.INACTIVE]
    assert ev.evaluate(T0 + 4 * MIN) == []


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "alerts.json"
    store, ev, _ = _setup(RULE, state)
    _up(store, [0, 0, 0, 0, 0])
    ev.evaluate(T0)
    ev.evaluate(T0 + MIN)
    assert _states(ev) == ["pending"]
    # a new evaluator (a restarted process) keeps the active time: firing at T0 + 2 min, not + 3
    again = Evaluator(ev.rules, Engine(store).instant, lambda batch: None, interval_ms=MIN, state_path=state)
    again.evaluate(T0 + 2 * MIN)
    assert _states(again) == ["firing"]
    (alert,) = next(iter(again.alerts.values())).values()
    assert alert.active_at_ms == T0


def test_a_broken_rule_is_counted_and_the_others_run() -> None:
    store = MemoryStore()
    _up(store, [0])
    rules = RuleFile(
        (RuleGroup("g", (AlertRule("Bad", 'label_replace(up, "x", "$1", "source", "(")'), RULE)),)
    )
    ev = Evaluator(rules, Engine(store).instant, lambda batch: None, interval_ms=MIN)
    ev.evaluate(T0)
    assert ev.failed_evaluations == 1
    assert _states(ev) == ["pending"]


def test_value_is_printed_as_go_does() -> None:
    rule = AlertRule("Big", "vector(1234567) > 0", annotations={"v": "{{ $value }} {{ $value | humanize }}"})
    _, ev, _ = _setup(rule)
    (alert,) = ev.evaluate(T0)
    assert alert.annotations["v"] == "1.234567e+06 1.235M"
    assert not math.isnan(alert.value)


def test_expanding_notation() -> None:
    assert expand_values("1 _ 0+10x2 5x1 3-1x2") == [1, None, 0, 10, 20, 5, 5, 3, 2, 1]


def test_evaluator_passes_the_generated_promtool_unit_tests() -> None:
    """The same unit tests promtool runs, on infersight's evaluator and PromQL engine."""
    assert run_test_file(RULES_DIR / TESTS_FILE) == []


def test_evaluator_passes_the_override_unit_tests(tmp_path: Path) -> None:
    write_rules(RulesConfig.from_dict(OVERRIDES), tmp_path)
    assert run_test_file(tmp_path / TESTS_FILE) == []


def test_the_runner_reports_a_mismatch(tmp_path: Path) -> None:
    for name in (RULES_FILE, TESTS_FILE):
        text = (RULES_DIR / name).read_text()
        (tmp_path / name).write_text(text.replace("first token within 11.91k ms", "first token within 1 ms"))
    (problem,) = run_test_file(tmp_path / TESTS_FILE)
    assert "InferServiceTTFTHigh" in problem


SEMANTICS = Path(__file__).resolve().parent / "testdata" / "semantics.test.yml"


def test_evaluator_agrees_on_keep_firing_for_and_for_edges() -> None:
    assert run_test_file(SEMANTICS) == []


@pytest.mark.integration
def test_promtool_agrees_on_the_same_edges() -> None:
    result = subprocess.run(
        [require("promtool"), "test", "rules", SEMANTICS.name],
        cwd=SEMANTICS.parent,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stdout + result.stderr
