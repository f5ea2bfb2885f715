"""Restarts of a target without a start time, read from its counters: the tracker, and end to end
(captured llama.cpp scrape → sidecar → chDB store → ``Started`` event and ``InferPodRestarted``)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.evaluator import Evaluator
from alerts.generate import RULES_FILE
from alerts.rules import RuleFile, RuleGroup, from_yaml
from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from collector.parse import ParsedSample, parse_body
from collector.restarts import RestartTracker
from query.events.detector import EventDetector
from query.promql.engine import Engine
from store.open import Store
from tests.alerts.tools import require

RULES = Path(__file__).resolve().parents[2] / "alerts" / "rules" / RULES_FILE
IDENTITY = {
    "service_id": "svc-llama",
    "service_name": "llama",
    "group_id": "g-1",
    "project_id": "p-1",
    "instance_name": "llama-0",
    "source": "llama-0-pod",
}
T0_S = 1_765_000_000.0


def _counter(name: str, value: float, **labels: str) -> ParsedSample:
    return ParsedSample(name + "_total", labels, value, None, name, "counter")


def _llamacpp(testdata_dir: Path) -> str:
    return (testdata_dir / "captured/engines/llamacpp/metrics.txt").read_text()


def _restarted(exposition: str) -> str:
    """The same server just started again: every counter back at 0 (gauges as they were)."""
    counters = set(re.findall(r"^# TYPE (\S+) counter$", exposition, re.M))
    lines = []
    for line in exposition.splitlines():
        name = line.split(" ", 1)[0]
        lines.append(f"{name} 0" if name in counters else line)
    return "\n".join(lines) + "\n"


def test_llamacpp_capture_has_no_start_time_and_resets_as_a_restart(testdata_dir: Path) -> None:
    text = _llamacpp(testdata_dir)
    samples = parse_body(text.encode(), "text/plain")
    assert not any(s.name == "process_start_time_seconds" for s in samples)
    tracker = RestartTracker()
    assert tracker.observe(samples) is False
    assert tracker.observe(samples) is False
    assert tracker.observe(parse_body(_restarted(text).encode(), "text/plain")) is True
    assert tracker.restarts == 1


def test_start_time_decides_when_the_target_has_one() -> None:
    tracker = RestartTracker()
    start = ParsedSample("process_start_time_seconds", {}, 100.0, None, "process_start_time_seconds", "gauge")
    assert tracker.observe([start, _counter("a", 5)]) is False
    # a counter reset with the same start time: the process did not restart
    assert tracker.observe([start, _counter("a", 0)]) is False
    moved = ParsedSample("process_start_time_seconds", {}, 200.0, None, "process_start_time_seconds", "gauge")
    assert tracker.observe([moved, _counter("a", 3)]) is True


def test_one_family_reset_among_others_is_not_a_restart() -> None:
    tracker = RestartTracker()
    tracker.observe([_counter("a", 10), _counter("b", 10), _counter("c", 10)])
    assert tracker.observe([_counter("a", 0), _counter("b", 12), _counter("c", 11)]) is False
    # two of three families back: most of the target restarted
    assert tracker.observe([_counter("a", 1), _counter("b", 0), _counter("c", 0)]) is True


def test_counters_at_zero_and_new_series_are_not_compared() -> None:
    tracker = RestartTracker()
    tracker.observe([_counter("a", 0), _counter("b", 4)])
    # a is still 0 (cannot go back), c is new: b alone decides, and it went up
    assert tracker.observe([_counter("a", 0), _counter("b", 5), _counter("c", 1)]) is False
    assert tracker.restarts == 0


def test_histogram_buckets_vote_within_their_family() -> None:
    def bucket(le: str, v: float) -> ParsedSample:
        return ParsedSample("h_bucket", {"le": le}, v, None, "h", "histogram")

    tracker = RestartTracker()
    tracker.observe([bucket("1", 3), bucket("+Inf", 5), _counter("a", 7), _counter("b", 7)])
    # the histogram's many series count as one family among three
    assert tracker.observe([bucket("1", 0), bucket("+Inf", 0), _counter("a", 8), _counter("b", 8)]) is False


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(min_value=1, max_value=1e12), min_size=1, max_size=12),
    growth=st.floats(min_value=0, max_value=1e6),
)
def test_growing_counters_never_restart_and_all_reset_always_does(values: list[float], growth: float) -> None:
    tracker = RestartTracker()
    families = [_counter(f"f{i}", v) for i, v in enumerate(values)]
    tracker.observe(families)
    assert tracker.observe([_counter(f"f{i}", v + growth) for i, v in enumerate(values)]) is False
    assert tracker.observe([_counter(f"f{i}", 0.0) for i in range(len(values))]) is True


@settings(max_examples=50, deadline=None)
@given(n=st.integers(min_value=3, max_value=20), reset=st.data())
def test_a_minority_of_families_reset_is_not_a_restart(n: int, reset: st.DataObject) -> None:
    down = reset.draw(st.sets(st.integers(0, n - 1), max_size=(n - 1) // 2))
    tracker = RestartTracker()
    tracker.observe([_counter(f"f{i}", 100) for i in range(n)])
    assert tracker.observe([_counter(f"f{i}", 0 if i in down else 101) for i in range(n)]) is False


def test_llamacpp_restart_gives_started_and_the_alert(
    http_stub: Any, canned: Any, testdata_dir: Path, chdb_store: Store
) -> None:
    """The whole path: a llama.cpp target (no start time) scraped by the sidecar, restarted between
    two scrapes while unreachable; the store then holds the restart count, the detector says
    ``Started`` and the generated ``InferPodRestarted`` rule fires, for that pod only."""
    text = _llamacpp(testdata_dir)
    clock = iter(T0_S + 10 * i for i in range(100))
    bodies: list[bytes | None] = [text.encode(), text.encode(), None, _restarted(text).encode()]
    detector = EventDetector(chdb_store.querier)
    ticks: list[list[str]] = []

    async def go() -> list[float]:
        restarts = []
        async with http_stub({}) as server:
            target = TargetConfig(
                host="127.0.0.1",
                port=server.port,
                engine="llamacpp",
                allowed_ports=(server.port,),
                **IDENTITY,
            )
            sidecar = Sidecar(ScrapeConfig(), target, ListConsumer(), clock=lambda: next(clock))
            for body in bodies:
                server.routes["/metrics"] = canned(body) if body is not None else canned(b"", status=503)
                batch = await sidecar.scrape_once()
                chdb_store.writer.write(batch)
                [count] = [s for s in batch if s.name == "infersight_target_restarts_total"]
                restarts.append(count.value)
                ticks.append([e.reason for e in detector.tick(count.ts_ms + 1) if e.kind == "pod"])
            await sidecar.stop()
        return restarts

    assert asyncio.run(go()) == [0.0, 0.0, 0.0, 1.0]
    assert ticks[-1] == ["ScrapeRecovered", "Healthy", "Started"]
    assert "Started" not in [r for tick in ticks[:-1] for r in tick]

    [restart_rule] = [
        r for g in from_yaml(RULES.read_text()).groups for r in g.rules if r.alert == "InferPodRestarted"
    ]
    evaluator = Evaluator(
        RuleFile((RuleGroup("g", (restart_rule,)),)),
        Engine(chdb_store.querier).instant,
        chdb_store.writer.write,
    )
    evaluator.evaluate(int((T0_S + 31) * 1000))
    [alert] = [a for by_fp in evaluator.alerts.values() for a in by_fp.values()]
    assert alert.state.value == "firing"
    assert {k: alert.labels[k] for k in IDENTITY} == IDENTITY
    assert "restarted 1 time(s)" in alert.annotations["description"]


@pytest.mark.integration
def test_prometheus_fires_the_rule_on_the_restart_count_alone(tmp_path: Path) -> None:
    """The generated rule in Prometheus' own rule tester: an engine without a start time whose
    sidecar counted a restart fires, once, with 1 restart; a sidecar that restarted (its count back
    to 0) does not."""
    ident = ", ".join(f'{k}="{v}"' for k, v in sorted(IDENTITY.items()))
    other = ident.replace("llama-0-pod", "llama-1-pod")
    shutil.copy(RULES, tmp_path / RULES_FILE)
    tests = {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"infersight_target_restarts_total{{{ident}}}", "values": "0x3 1x30"},
                    {"series": f"infersight_target_restarts_total{{{other}}}", "values": "2x3 0x30"},
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "InferPodRestarted", "exp_alerts": []},
                    {
                        "eval_time": "5m",
                        "alertname": "InferPodRestarted",
                        "exp_alerts": [
                            {
                                "exp_labels": {**IDENTITY, "severity": "warning"},
                                "exp_annotations": {
                                    "summary": "Engine of pod llama-0-pod restarted",
                                    "description": "The inference engine in pod llama-0-pod of service "
                                    "svc-llama restarted 1 time(s) in the last 900 s.",
                                    "runbook": "Check the pod events (BackOff, CrashLoopBackOff, Unhealthy) "
                                    "and the pod's logs for the exit reason.",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "restart.test.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [require("promtool"), "test", "rules", "restart.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
