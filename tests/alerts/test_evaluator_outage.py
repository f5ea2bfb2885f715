"""The store down mid-run while rules are evaluated: one ERROR line when the outage starts, a summary
at most every minute while it lasts, one line when the store answers again — not a line per rule per
interval; alerts keep their state through it and ALERTS is written again after. A rule's own error
(not the store's) is still logged each time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from alerts.evaluator import Evaluator
from alerts.outage import is_store_outage
from alerts.rules import AlertRule, RuleFile, RuleGroup
from alerts.state import AlertState
from model.series import Sample
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from store.backend import StoreUnavailableError
from store.memory import MemoryStore

MIN = 60_000
T0 = 1_700_000_000_000
INTERVAL_MS = 15_000


class FlakyStore:
    """A memory store whose reads and writes fail as an unreachable ClickHouse's do while ``down``."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.down = False
        self.written: list[Sample] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreUnavailableError("ClickHouse at 127.0.0.1:9000: Connection refused")
            return attr(*args, **kwargs)

        return call

    def write(self, batch: list[Sample]) -> None:
        if self.down:
            raise StoreUnavailableError("ClickHouse at 127.0.0.1:9000: Connection refused")
        self.written += batch


@pytest.fixture
def lines() -> Iterator[list[tuple[str, str]]]:
    out: list[tuple[str, str]] = []
    sink = logger.add(lambda m: out.append((m.record["level"].name, m.record["message"])), level="INFO")
    yield out
    logger.remove(sink)


def test_an_outage_is_logged_once_summarised_each_minute_and_its_end_once(
    lines: list[tuple[str, str]],
) -> None:
    store = FlakyStore()
    for i in range(10):
        store.inner.append({"__name__": "up", "job": "a"}, T0 + i * MIN, 0.0)
    rules = [AlertRule(f"Down{i}", "up == 0") for i in range(20)]
    now = [0.0]
    ev = Evaluator(
        RuleFile((RuleGroup("g", tuple(rules)),)),
        Engine(store).instant,
        store.write,
        interval_ms=INTERVAL_MS,
        clock=lambda: now[0],
    )
    ev.evaluate(T0)
    assert len(ev.alerts) == 20
    assert all(a.state is AlertState.FIRING for by_fp in ev.alerts.values() for a in by_fp.values())
    store.down = True
    rounds = 5 * 60 * 1000 // INTERVAL_MS  # five minutes of rounds, 20 rules each
    for i in range(1, rounds + 1):
        now[0] = i * INTERVAL_MS / 1000
        ev.evaluate(T0 + i * INTERVAL_MS)  # never raises: the loop goes on
    errors = [m for level, m in lines if level == "ERROR"]
    assert 5 <= len(errors) <= 6, errors  # the start, then at most one a minute
    assert "cannot answer" in errors[0]
    assert all("still cannot answer" in m for m in errors[1:])
    assert ev.failed_evaluations == rounds * 20
    assert ev.outage.down
    assert all(a.state is AlertState.FIRING for by_fp in ev.alerts.values() for a in by_fp.values())
    store.down = False
    written = len(store.written)
    now[0] += 15
    ev.evaluate(T0 + (rounds + 1) * INTERVAL_MS)
    assert not ev.outage.down
    recovered = [m for level, m in lines if level == "INFO" and "answers again" in m]
    assert len(recovered) == 1
    assert len(store.written) > written  # ALERTS written again
    ev.evaluate(T0 + (rounds + 2) * INTERVAL_MS)
    assert len([m for level, m in lines if "answers again" in m]) == 1
    assert len([m for level, m in lines if level == "ERROR"]) == len(errors)


def test_a_rules_own_error_is_still_logged_each_time(lines: list[tuple[str, str]]) -> None:
    store = FlakyStore()
    store.inner.append({"__name__": "up", "job": "a"}, T0, 0.0)
    store.inner.append({"__name__": "up", "job": "b"}, T0, 0.0)
    bad = AlertRule("Dup", 'label_replace(up, "job", "x", "", "")')  # two alerts, one labelset
    ev = Evaluator(RuleFile((RuleGroup("g", (bad,)),)), Engine(store).instant, store.write, interval_ms=1)
    for i in range(3):
        ev.evaluate(T0 + i)
    errors = [m for level, m in lines if level == "ERROR"]
    assert len(errors) == 3
    assert all("rule evaluation failed" in m for m in errors)
    assert not ev.outage.down


def test_what_counts_as_an_outage() -> None:
    wrapped = PromQLError("internal", "StoreUnavailableError: down")
    wrapped.__cause__ = StoreUnavailableError("down")
    assert is_store_outage(wrapped)
    assert is_store_outage(RuntimeError("Code: 241. DB::Exception: Memory limit (total) exceeded"))
    assert not is_store_outage(PromQLError("execution", "vector contains metrics with the same labelset"))
    assert not is_store_outage(RuntimeError("Code: 47. DB::Exception: Missing columns"))
