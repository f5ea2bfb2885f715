"""SLO management under ``/api/v1/slos``: list, read, create or replace (``PUT``), delete.

Every call that changes an SLO, refused ones included, writes an audit trace (``CreateSlo``,
``UpdateSlo``, ``DeleteSlo``; resource type ``Slo``, ours: the guide has none). Tenancy as for
rule groups (alerts/api.py): a project's key sees its own project's SLOs, and its ``admin`` key
manages them; the bootstrap admin key (and everyone with auth off) manages the global ones and
any project's with ``?project_id=``. A ``*`` key that is not the bootstrap key reads every SLO
and manages none.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from alerts.projects import GLOBAL
from alerts.slo_registry import ReadOnlySloError, SloRegistry
from model.errors import ConfigError
from model.slo import NAME
from query.api.audit import audit_operation
from query.api.json_body import read_json
from query.api.tenancy import current_project, managed_project
from store.api_keys import ALL_PROJECTS
from store.audit import AuditLog

TRACE_NAMES = {"create": "CreateSlo", "update": "UpdateSlo", "delete": "DeleteSlo"}
RESOURCE_TYPE = "Slo"


def _error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "errorType": error_type, "error": message}, status_code=status)


def _target(request: Request, manage: bool) -> str | JSONResponse:
    """The project an SLO call addresses, or the refusal (as ``alerts.api`` does for groups)."""
    scope, asked = managed_project(), request.query_params.get("project_id")
    if scope is None or (scope == ALL_PROJECTS and not manage):
        if asked == ALL_PROJECTS:
            return _error(400, "bad_data", "project_id: '*' is every project, not one")
        return asked or GLOBAL
    if scope == ALL_PROJECTS:
        return _error(403, "forbidden", "only the bootstrap admin key manages SLOs of every project")
    if asked and asked != scope:
        return _error(403, "forbidden", "a key manages only its own project's SLOs")
    return scope


def build_slo_router(registry: SloRegistry, audit: AuditLog | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1/slos")

    async def audited(request: Request, action: str, name: str, project: str, response: Any) -> Any:
        if audit is not None:
            code = response.status_code if isinstance(response, JSONResponse) else 200
            body = response["data"] if isinstance(response, dict) else None
            await run_in_threadpool(
                audit_operation, audit, request, TRACE_NAMES[action], RESOURCE_TYPE, name[:200], name[:200],
                code=code, body=body, project_id=project if isinstance(project, str) else "",
            )  # fmt: skip
        return response

    @router.get("")
    async def list_slos() -> Any:
        return {"status": "success", "data": [s.to_dict() for s in registry.of_project(current_project())]}

    @router.get("/{name}")
    async def get_slo(name: str, request: Request) -> Any:
        project = _target(request, manage=False)
        if isinstance(project, JSONResponse):
            return project
        slo = registry.get(name, project)
        if slo is None:
            return _error(404, "not_found", f"no SLO {name!r}")
        return {"status": "success", "data": slo.to_dict()}

    @router.put("/{name}")
    async def put_slo(name: str, request: Request) -> Any:
        project = _target(request, manage=True)
        if isinstance(project, JSONResponse):
            return await audited(request, "update", name, "", project)
        action = "update" if registry.get(name, project) is not None else "create"
        if not NAME.match(name):
            message = "name: 1-100 letters, digits, '_', '.', ':' or '-'"
            return await audited(request, action, name, project, _error(400, "bad_data", message))
        try:
            body = await read_json(request)
            slo, action = registry.put(name, body, project)
        except ReadOnlySloError as error:
            return await audited(request, action, name, project, _error(409, "bad_data", str(error)))
        except (ConfigError, ValueError, RecursionError) as error:
            message = str(error) or "malformed body"
            return await audited(request, action, name, project, _error(400, "bad_data", message))
        return await audited(request, action, name, project, {"status": "success", "data": slo.to_dict()})

    @router.delete("/{name}")
    async def delete_slo(name: str, request: Request) -> Any:
        project = _target(request, manage=True)
        if isinstance(project, JSONResponse):
            return await audited(request, "delete", name, "", project)
        try:
            deleted = registry.delete(name, project)
        except ReadOnlySloError as error:
            return await audited(request, "delete", name, project, _error(409, "bad_data", str(error)))
        if deleted is None:
            return await audited(
                request, "delete", name, project, _error(404, "not_found", f"no SLO {name!r}")
            )
        return await audited(
            request, "delete", name, project, {"status": "success", "data": deleted.to_dict()}
        )

    return router
