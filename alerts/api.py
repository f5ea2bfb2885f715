"""HTTP endpoints for rules and alerts: Prometheus' ``/api/v1/rules`` and ``/api/v1/alerts`` (what
Grafana's alert list reads), and rule-group management under ``/api/v1/rules/groups/{name}``.

A group sent to ``PUT`` is validated as a rule file is; a bad expression is a 400 in Prometheus'
error shape naming the problem (``groups[0].rules[1].expr: …``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from alerts.alertmanager import rfc3339
from alerts.evaluator import Evaluator
from alerts.registry import ReadOnlyGroupError, RuleRegistry
from alerts.rules import AlertRule
from alerts.state import Alert, AlertState
from model.errors import ConfigError
from query.promql.value import format_float


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "errorType": error_type, "error": message}, status_code=status)


def _alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "state": alert.state.value,
        "activeAt": rfc3339(alert.active_at_ms),
        "value": format_float(alert.value),
    }


def _rule_json(rule: AlertRule, alerts: list[Alert]) -> dict[str, Any]:
    active = [a for a in alerts if a.state is not AlertState.INACTIVE]
    states = {a.state for a in active}
    state = "firing" if AlertState.FIRING in states else "pending" if states else "inactive"
    return {
        "type": "alerting",
        "name": rule.alert,
        "query": rule.expr,
        "duration": rule.for_ms / 1000,
        "keepFiringFor": rule.keep_firing_for_ms / 1000,
        "labels": rule.labels,
        "annotations": rule.annotations,
        "alerts": [_alert_json(a) for a in active],
        "health": "ok",
        "state": state,
    }


# audit(request, action "create"/"update"/"delete", group name, HTTP code): the audit trail's hook
Audit = Callable[[Request, str, str, int], None]


def build_rules_router(registry: RuleRegistry, evaluator: Evaluator, audit: Audit | None = None) -> APIRouter:
    """The router; the evaluator follows every change made through it, and ``audit`` sees each
    attempt to change a group, refused ones included (their code is the 4xx answered)."""
    router = APIRouter(prefix="/api/v1")
    registry.listeners.append(evaluator.set_rules)

    def audited(request: Request, action: str, name: str, response: Any) -> Any:
        if audit is not None:
            code = response.status_code if isinstance(response, JSONResponse) else 200
            audit(request, action, name, code)
        return response

    @router.get("/rules")
    async def rules() -> Any:
        groups = [
            {
                "name": group.name,
                "file": "builtin" if registry.is_builtin(group.name) else "api",
                "interval": (group.interval_ms or evaluator.interval_ms) / 1000,
                "rules": [
                    _rule_json(rule, evaluator.rule_alerts(group.name, i, rule))
                    for i, rule in enumerate(group.rules)
                ],
            }
            for group in registry.rules.groups
        ]
        return {"status": "success", "data": {"groups": groups}}

    @router.get("/alerts")
    async def alerts() -> Any:
        active = [
            _alert_json(a)
            for by_fp in evaluator.alerts.values()
            for a in by_fp.values()
            if a.state is not AlertState.INACTIVE
        ]
        return {"status": "success", "data": {"alerts": active}}

    @router.get("/rules/groups/{name}")
    async def get_group(name: str) -> Any:
        group = registry.group(name)
        if group is None:
            return _error(404, "not_found", f"no rule group {name!r}")
        return {"status": "success", "data": group.to_dict()}

    @router.put("/rules/groups/{name}")
    async def put_group(name: str, request: Request) -> Any:
        action = "update" if registry.group(name) is not None else "create"
        try:
            body = await request.json()
            group = registry.put(name, body)
        except ReadOnlyGroupError as error:
            return audited(request, action, name, _error(409, "bad_data", str(error)))
        except (ConfigError, ValueError) as error:
            return audited(request, action, name, _error(400, "bad_data", str(error)))
        return audited(request, action, name, {"status": "success", "data": group.to_dict()})

    @router.delete("/rules/groups/{name}")
    async def delete_group(name: str, request: Request) -> Any:
        try:
            deleted = registry.delete(name)
        except ReadOnlyGroupError as error:
            return audited(request, "delete", name, _error(409, "bad_data", str(error)))
        if not deleted:
            return audited(request, "delete", name, _error(404, "not_found", f"no rule group {name!r}"))
        return audited(request, "delete", name, {"status": "success", "data": None})

    return router
