"""HTTP endpoints for rules and alerts: Prometheus' ``/api/v1/rules`` and ``/api/v1/alerts`` (what
Grafana's alert list reads), and rule-group management under ``/api/v1/rules/groups/{name}``.

A group sent to ``PUT`` is validated as a rule file is; a bad expression is a 400 in Prometheus'
error shape naming the problem (``groups[0].rules[1].expr: …``).

Rule groups belong to a project (``alerts/projects.py``). A project's key sees and manages its own
project's groups only (its ``admin`` key adds, changes and removes them), and sees only alerts
labelled with its project: its own groups' and those global rules raised on its series (a global
rule is listed to it only with such alerts, so it learns nothing of other projects' services).
The bootstrap admin key (and everyone with auth off) manages the global groups, and any project's
with ``?project_id=``. A ``*`` key that is not the bootstrap key reads everything, manages nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from alerts.alertmanager import rfc3339
from alerts.evaluator import Evaluator
from alerts.projects import GLOBAL, OwnedGroup, alert_project
from alerts.registry import ReadOnlyGroupError, RuleRegistry
from alerts.rules import AlertRule
from alerts.state import Alert, AlertState
from model.errors import ConfigError
from query.api.tenancy import current_project, managed_project
from query.promql.value import format_float
from store.api_keys import ALL_PROJECTS


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


def _visible(alerts: list[Alert], project: str | None) -> list[Alert]:
    """The alerts a caller confined to ``project`` may see (every one with None)."""
    return alerts if project is None else [a for a in alerts if alert_project(a.labels) == project]


def _target(request: Request, manage: bool) -> str | JSONResponse:
    """The project whose groups a group call addresses, or the refusal. Confined keys get their
    own project; the bootstrap key (and auth off) the global groups, or ``?project_id=``'s."""
    scope, asked = managed_project(), request.query_params.get("project_id")
    if scope is None or (scope == ALL_PROJECTS and not manage):
        if asked == ALL_PROJECTS:
            return _error(400, "bad_data", "project_id: '*' is every project, not one")
        return asked or GLOBAL
    if scope == ALL_PROJECTS:
        return _error(403, "forbidden", "only the bootstrap admin key manages rules of every project")
    if asked and asked != scope:
        return _error(403, "forbidden", "a key manages only its own project's rule groups")
    return scope


# audit(request, action "create"/"update"/"delete", group name, HTTP code): the audit trail's hook
Audit = Callable[[Request, str, str, int], None]


def build_rules_router(registry: RuleRegistry, evaluator: Evaluator, audit: Audit | None = None) -> APIRouter:
    """The router; the evaluator follows every change made through it, and ``audit`` sees each
    attempt to change a group, refused ones included (their code is the 4xx answered)."""
    router = APIRouter(prefix="/api/v1")
    registry.listeners.append(evaluator.set_rules)
    evaluator.set_rules(registry.owned)  # groups kept in the registry's file from an earlier run

    def audited(request: Request, action: str, name: str, response: Any) -> Any:
        if audit is not None:
            code = response.status_code if isinstance(response, JSONResponse) else 200
            audit(request, action, name, code)
        return response

    def group_json(owner: OwnedGroup, project: str | None) -> dict[str, Any] | None:
        """A group as ``/api/v1/rules`` lists it to a caller confined to ``project`` (None: all);
        None when that caller may not see it."""
        group = owner.group
        mine = project is None or owner.project_id == project
        if not mine and owner.project_id != GLOBAL:
            return None
        rules = []
        for i, rule in enumerate(group.rules):
            alerts = _visible(evaluator.rule_alerts(owner, i, rule), project)
            if mine or any(a.state is not AlertState.INACTIVE for a in alerts):
                rules.append(_rule_json(rule, alerts))
        if not rules and not mine:
            return None
        out = {
            "name": group.name,
            "file": "builtin" if registry.is_builtin(group.name, owner.project_id) else "api",
            "interval": (group.interval_ms or evaluator.interval_ms) / 1000,
            "rules": rules,
        }
        if owner.project_id != GLOBAL:
            out["project_id"] = owner.project_id
        return out

    @router.get("/rules")
    async def rules() -> Any:
        project = current_project()
        groups = [g for owner in registry.owned if (g := group_json(owner, project)) is not None]
        return {"status": "success", "data": {"groups": groups}}

    @router.get("/alerts")
    async def alerts() -> Any:
        everyone = [a for by_fp in evaluator.alerts.values() for a in by_fp.values()]
        active = [
            _alert_json(a)
            for a in _visible(everyone, current_project())
            if a.state is not AlertState.INACTIVE
        ]
        return {"status": "success", "data": {"alerts": active}}

    @router.get("/rules/groups/{name}")
    async def get_group(name: str, request: Request) -> Any:
        project = _target(request, manage=False)
        if isinstance(project, JSONResponse):
            return project
        group = registry.group(name, project)
        if group is None:
            return _error(404, "not_found", f"no rule group {name!r}")
        return {"status": "success", "data": group.to_dict()}

    @router.put("/rules/groups/{name}")
    async def put_group(name: str, request: Request) -> Any:
        project = _target(request, manage=True)
        if isinstance(project, JSONResponse):
            return audited(request, "update", name, project)
        action = "update" if registry.group(name, project) is not None else "create"
        try:
            body = await request.json()
            group = registry.put(name, body, project)
        except ReadOnlyGroupError as error:
            return audited(request, action, name, _error(409, "bad_data", str(error)))
        except (ConfigError, ValueError, RecursionError) as error:
            return audited(request, action, name, _error(400, "bad_data", str(error) or "malformed body"))
        return audited(request, action, name, {"status": "success", "data": group.to_dict()})

    @router.delete("/rules/groups/{name}")
    async def delete_group(name: str, request: Request) -> Any:
        project = _target(request, manage=True)
        if isinstance(project, JSONResponse):
            return audited(request, "delete", name, project)
        try:
            deleted = registry.delete(name, project)
        except ReadOnlyGroupError as error:
            return audited(request, "delete", name, _error(409, "bad_data", str(error)))
        if not deleted:
            return audited(request, "delete", name, _error(404, "not_found", f"no rule group {name!r}"))
        return audited(request, "delete", name, {"status": "success", "data": None})

    return router
