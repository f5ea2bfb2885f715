"""Runs a ``promtool test rules`` file on infersight's evaluator instead of Prometheus'.

The same generated unit tests then pass on both: the evaluator agrees with Prometheus on ``for``,
label sets and annotation templates for every rule of the packs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from alerts.evaluator import Evaluator
from alerts.rules import from_yaml
from alerts.state import AlertState
from model.durations import parse_duration_ms
from model.series import STALE_NAN
from query.promql.engine import Engine
from query.promql.parse import parse_expr
from store.memory import MemoryStore

TERM = re.compile(r"^(-?[\d.]+(?:e[+-]?\d+)?)(?:([+-])([\d.]+(?:e[+-]?\d+)?))?x(\d+)$")


def expand_values(text: str) -> list[float | None]:
    """promtool's expanding notation: ``1 2 _ stale 0+10x3 5x2`` → values per step (None: missing)."""
    out: list[float | None] = []
    for token in text.split():
        if token == "_":
            out.append(None)
        elif token == "stale":
            out.append(STALE_NAN)
        elif token.startswith("_x"):
            out += [None] * int(token[2:])
        elif match := TERM.match(token):
            start, sign, step, times = match.groups()
            delta = float(step or 0) * (-1 if sign == "-" else 1)
            out += [float(start) + i * delta for i in range(int(times) + 1)]
        else:
            out.append(float(token))
    return out


def _labels(series: str) -> dict[str, str]:
    selector = parse_expr(series)
    labels = {m.name: m.value for m in selector.matchers.matchers}
    labels["__name__"] = selector.name
    return labels


def run_test_file(path: Path) -> list[str]:
    """Mismatches between the file's expectations and infersight's evaluator; empty when all agree."""
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    rules = from_yaml("\n".join((path.parent / f).read_text() for f in doc["rule_files"]))
    interval_ms = parse_duration_ms(doc.get("evaluation_interval", "1m"))
    problems = []
    for t, test in enumerate(doc["tests"]):
        store = MemoryStore()
        step_ms = parse_duration_ms(test.get("interval", "1m"))
        for series in test["input_series"]:
            labels = _labels(series["series"])
            for i, value in enumerate(expand_values(series["values"])):
                if value is not None:
                    store.append(labels, i * step_ms, value)
        checks = sorted(test["alert_rule_test"], key=lambda c: parse_duration_ms(c["eval_time"]))
        evaluator = Evaluator(rules, Engine(store).instant, lambda batch: None, interval_ms=interval_ms)
        ts = 0
        for check in checks:
            until = parse_duration_ms(check["eval_time"])
            while ts <= until:
                evaluator.evaluate(ts)
                ts += interval_ms
            got = sorted(
                (sorted(a.labels.items()), sorted(a.annotations.items()))
                for by_fp in evaluator.alerts.values()
                for a in by_fp.values()
                if a.state is AlertState.FIRING and a.labels["alertname"] == check["alertname"]
            )
            want = sorted(
                (
                    sorted({**e.get("exp_labels", {}), "alertname": check["alertname"]}.items()),
                    sorted(e.get("exp_annotations", {}).items()),
                )
                for e in check.get("exp_alerts") or []
            )
            if got != want:
                problems.append(
                    f"test {t} {check['alertname']} at {check['eval_time']}: want {want}, got {got}"
                )
        if evaluator.failed_evaluations:
            problems.append(f"test {t}: {evaluator.failed_evaluations} failed rule evaluations")
    return problems
