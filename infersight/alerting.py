"""Builds the alert evaluator and its HTTP routes for ``infersight run``/``server``/``demo``."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request

from alerts.api import build_rules_router
from alerts.registry import RuleRegistry
from alerts.runner import AlertRunner
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
    config: Config, engine: Engine, writer: SampleWriter, audit: AuditLog, hub: EventHub
) -> tuple[AlertRunner, APIRouter]:
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
    return runner, build_rules_router(registry, runner.evaluator, audit=audit_change)
