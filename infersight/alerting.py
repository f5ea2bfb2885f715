"""Builds the alert evaluator and its HTTP routes for ``infersight run``/``server``/``demo``."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request

from alerts.api import build_rules_router
from alerts.registry import RuleRegistry
from alerts.runner import AlertRunner
from alerts.slo_api import build_slo_router
from alerts.slo_registry import SloRegistry
from alerts.slo_rules import owned_groups
from infersight.config import Config, state_dir
from query.api.audit import audit_operation
from query.events.hub import EventHub
from query.promql.engine import Engine
from store.audit import AuditLog
from store.writes import SampleWriter

# Rule-group changes through the API, as audit trace names (resource type AlertRuleGroup).
TRACE_NAMES = {
    "create": "CreateAlertRuleGroup",
    "update": "UpdateAlertRuleGroup",
    "delete": "DeleteAlertRuleGroup",
}


def build_alerting(
    config: Config,
    engine: Engine,
    writer: SampleWriter,
    audit: AuditLog,
    hub: EventHub,
    slos: SloRegistry | None = None,
) -> tuple[AlertRunner, APIRouter]:
    """The runner and the routes of rules, alerts and (with ``slos``) SLOs. The evaluator runs the
    rule groups and every SLO's burn-rate group, and follows changes to either."""
    folder = state_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    section = config.alerts
    if not section.state_file:
        section = dataclasses.replace(section, state_file=str(folder / "alerts-state.json"))
    runner = AlertRunner(section, engine.instant, writer.write, hub.publish)

    def audit_change(request: Request, action: str, name: str, code: int) -> None:
        trace = TRACE_NAMES.get(action, "UpdateAlertRuleGroup")
        audit_operation(audit, request, trace, "AlertRuleGroup", name, name, code=code)

    registry = RuleRegistry(runner.evaluator.rules, folder / "api-rules.yml")
    router = build_rules_router(registry, runner.evaluator, audit=audit_change)
    if slos is not None:

        def follow(*_: object) -> None:
            runner.evaluator.set_rules((*registry.owned, *owned_groups(slos.slos)))

        registry.listeners.remove(runner.evaluator.set_rules)
        registry.listeners.append(follow)
        slos.listeners.append(follow)
        follow()
        both = APIRouter()
        both.include_router(router)
        both.include_router(build_slo_router(slos, audit))
        router = both
    return runner, router
