"""Evaluates alerting rules on the PromQL engine with Prometheus' semantics (rules/alerting.go).

Each evaluation: run the expression at ``ts``; every result sample is an alert (labels = sample
labels without ``__name__`` + templated rule labels + ``alertname``); new ones are *pending*,
pending ones older than ``for`` become *firing*; firing ones whose sample vanished stay firing for
``keep_firing_for``, then are *inactive* (resolved) and kept 15 min so the resolution is sent.
``ALERTS{alertstate}`` and ``ALERTS_FOR_STATE`` are written back, with staleness markers when an
alert ends, and the state is saved so a restart neither re-waits ``for`` nor re-notifies.

A project's group (``alerts/projects.py``) is queried confined to that project, as its read key
would be, and its alerts get ``project_id`` (over any rule label of that name).

While the store is down every rule fails: that is logged as one outage (``alerts/outage.py``: once,
a summary at most every minute, once at recovery), not a line per rule per interval, and the round
goes on (alerts keep their state; ALERTS is written again once the store answers).

>>> ev = Evaluator(rules, query=Engine(store.querier).instant, write=store.writer.write)
>>> to_send = ev.evaluate(ts_ms)          # or: await ev.run(stop, notify=client.send)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from loguru import logger

from alerts.outage import OutageLog, is_store_outage
from alerts.projects import GLOBAL, PROJECT_LABEL, OwnedGroup, owned
from alerts.rules import AlertRule, RuleFile
from alerts.state import Alert, AlertState, Fingerprint, load_state, save_state
from alerts.template import TemplateError, expand
from model.labels import METRIC_NAME, to_labels
from model.series import STALE_NAN, Sample
from query.api.tenancy import confined_to
from query.promql.errors import PromQLError
from query.promql.value import Scalar, Value, Vector

RESOLVED_RETENTION_MS = 15 * 60_000  # Prometheus' resolvedRetention
RESEND_DELAY_MS = 60_000  # Prometheus' --rules.alert.resend-delay default

Query = Callable[[str, int], Value]
Write = Callable[[list[Sample]], None]


class Evaluator:
    """Every rule of ``rules`` every ``interval_ms`` (a group's own interval wins)."""

    def __init__(
        self,
        rules: RuleFile | Sequence[OwnedGroup],
        query: Query,
        write: Write,
        interval_ms: int = 30_000,
        state_path: Path | None = None,
        external_labels: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.groups = owned(rules)
        self.query = query
        self.write = write
        self.interval_ms = interval_ms
        self.state_path = state_path
        self.external_labels = external_labels or {}
        self.alerts: dict[str, dict[Fingerprint, Alert]] = load_state(state_path) if state_path else {}
        self._written: set[tuple[tuple[str, str], ...]] = set()
        self._next_ms: dict[str, int] = {}
        self.failed_evaluations = 0
        self.outage = OutageLog(clock=clock)
        self._transitions: list[Alert] = []
        self._lock = threading.Lock()  # ``alerts`` is replaced, never changed in place, under it

    @property
    def rules(self) -> RuleFile:
        """Every group, global and projects' (names may repeat across projects)."""
        return RuleFile(tuple(g.group for g in self.groups))

    def set_rules(self, rules: RuleFile | Sequence[OwnedGroup]) -> None:
        """Swap the rule set (API change, reload); alerts of rules that remain keep their state."""
        groups = owned(rules)
        keys = {g.rule_key(i, r) for g in groups for i, r in enumerate(g.group.rules)}
        with self._lock:
            self.alerts = {k: v for k, v in self.alerts.items() if k in keys}
        group_keys = {g.key for g in groups}
        self._next_ms = {k: v for k, v in self._next_ms.items() if k in group_keys}
        self.groups = groups

    def rule_alerts(self, group: OwnedGroup, index: int, rule: AlertRule) -> list[Alert]:
        """The current alerts of one rule (for the rules and alerts API)."""
        return list(self.alerts.get(group.rule_key(index, rule), {}).values())

    def _samples(self, rule: AlertRule, ts_ms: int) -> list[tuple[dict[str, str], float]]:
        value = self.query(rule.expr, ts_ms)
        if isinstance(value, Scalar):
            return [({}, value.value)]
        if not isinstance(value, Vector):
            raise PromQLError("execution", f"rule {rule.alert}: result is not a vector")
        return [(dict(s.labels), s.value) for s in value.samples]

    def eval_rule(self, key: str, rule: AlertRule, ts_ms: int, project_id: str = GLOBAL) -> None:
        """One evaluation of one rule at ``ts_ms``; updates ``self.alerts[key]``. ``project_id``:
        the rule's project, whose label every alert gets (the query must already be confined)."""
        # Copy on write: the API lists ``self.alerts`` from another thread while this one runs.
        active = dict(self.alerts.get(key, {}))
        seen: set[Fingerprint] = set()
        for sample_labels, value in self._samples(rule, ts_ms):
            # templates see the sample's labels as they are (``$labels.__name__`` too); the alert drops it
            labels = {k: v for k, v in sample_labels.items() if k != METRIC_NAME}
            for name, text in rule.labels.items():
                labels[name] = expand(text, sample_labels, value, self.external_labels)
            labels["alertname"] = rule.alert
            if project_id != GLOBAL:
                labels[PROJECT_LABEL] = project_id
            annotations = {
                k: expand(v, sample_labels, value, self.external_labels) for k, v in rule.annotations.items()
            }
            fp = tuple(sorted(labels.items()))
            if fp in seen:
                raise PromQLError(
                    "execution", f"rule {rule.alert}: vector contains metrics with the same labelset"
                )
            seen.add(fp)
            alert = active.get(fp)
            if alert is not None and alert.state is not AlertState.INACTIVE:
                alert.value, alert.annotations, alert.keep_firing_since_ms = value, annotations, 0
            else:
                active[fp] = Alert(labels, annotations, AlertState.PENDING, value, active_at_ms=ts_ms)
        for fp, alert in list(active.items()):
            if fp in seen:
                if alert.state is AlertState.PENDING and ts_ms - alert.active_at_ms >= rule.for_ms:
                    alert.state, alert.fired_at_ms = AlertState.FIRING, ts_ms
                    self._transitions.append(dataclasses.replace(alert))
                continue
            if alert.state is AlertState.PENDING or (
                alert.resolved_at_ms and ts_ms - alert.resolved_at_ms > RESOLVED_RETENTION_MS
            ):
                del active[fp]
            elif alert.state is AlertState.FIRING:
                if rule.keep_firing_for_ms > 0:
                    alert.keep_firing_since_ms = alert.keep_firing_since_ms or ts_ms
                    if ts_ms - alert.keep_firing_since_ms < rule.keep_firing_for_ms:
                        continue
                alert.state, alert.resolved_at_ms = AlertState.INACTIVE, ts_ms
                self._transitions.append(dataclasses.replace(alert))
        with self._lock:
            self.alerts = {**self.alerts, key: active}

    def take_transitions(self) -> list[Alert]:
        """Alerts that started firing or resolved since the last call (snapshots), for service events."""
        out, self._transitions = self._transitions, []
        return out

    def _series(self, ts_ms: int) -> list[Sample]:
        samples, now = [], set()
        for by_fp in self.alerts.values():
            for alert in by_fp.values():
                if alert.state is AlertState.INACTIVE:
                    continue
                for name, extra, value in (
                    ("ALERTS", {"alertstate": alert.state.value}, 1.0),
                    ("ALERTS_FOR_STATE", {}, alert.active_at_ms / 1000),
                ):
                    labels = to_labels({**alert.labels, **extra, METRIC_NAME: name})
                    now.add(labels)
                    samples.append(Sample(labels, ts_ms, value))
        samples += [Sample(labels, ts_ms, STALE_NAN) for labels in self._written - now]
        self._written = now
        return samples

    def evaluate(self, ts_ms: int) -> list[Alert]:
        """Evaluate the groups that are due at ``ts_ms``; write ALERTS; return the alerts to send."""
        answered = True  # no failure in this round said the store is down
        for owner in self.groups:
            group, group_key = owner.group, owner.key
            if ts_ms < self._next_ms.get(group_key, 0):
                continue
            interval = group.interval_ms or self.interval_ms
            self._next_ms[group_key] = ts_ms + interval
            # A project's rules read only its series; global rules read every project's.
            with confined_to(owner.project_id or None):
                for index, rule in enumerate(group.rules):
                    try:
                        self.eval_rule(owner.rule_key(index, rule), rule, ts_ms, owner.project_id)
                    except (PromQLError, TemplateError) as error:
                        self.failed_evaluations += 1
                        if is_store_outage(error):
                            answered = False
                            self.outage.failed(error)
                            continue
                        logger.bind(rule=rule.alert, project=owner.project_id).error(
                            "rule evaluation failed: {}", error
                        )
        written = self._written
        try:
            self.write(self._series(ts_ms))
        except Exception as error:
            if not is_store_outage(error):
                raise
            self._written = written  # the markers of alerts that ended are written next time
            answered = False
            self.outage.failed(error)
        self.outage.round_done(answered)
        if self.state_path:
            save_state(self.state_path, self.alerts)
        return self._to_send(ts_ms)

    def _to_send(self, ts_ms: int) -> list[Alert]:
        """Prometheus' ``needsSending``: firing every resend delay, resolutions once, pending never."""
        out = []
        for by_fp in self.alerts.values():
            for alert in by_fp.values():
                if alert.state is AlertState.PENDING:
                    continue
                resolved_since_sent = alert.resolved_at_ms > alert.last_sent_ms
                if resolved_since_sent or alert.last_sent_ms + RESEND_DELAY_MS <= ts_ms:
                    if alert.state is AlertState.INACTIVE and not resolved_since_sent:
                        continue
                    alert.last_sent_ms = ts_ms
                    alert.valid_until_ms = ts_ms + 4 * max(self.interval_ms, RESEND_DELAY_MS)
                    out.append(dataclasses.replace(alert))  # a snapshot: notifiers run after we go on
        return out

    async def run(
        self, stop: asyncio.Event, notify: Callable[[list[Alert]], Awaitable[None]] | None = None
    ) -> None:
        """Evaluate every interval until ``stop`` is set; a failing round is logged, the loop goes on."""
        while not stop.is_set():
            try:
                to_send = await asyncio.to_thread(self.evaluate, int(time.time() * 1000))
                if notify and to_send:
                    await notify(to_send)
            except Exception:  # loop boundary: one bad round must not stop alerting
                logger.exception("alert evaluation round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_ms / 1000)
