"""infersight's management API (``/api/v1/admin``); every call writes an audit trace.

Keys use the guide's API-key trace names (``CreateApiKeyV2``, ``ListApiKeyV2``, ``DeleteApiKeyV2``;
resource type ``apikeyV2``); retention settings use ``GetRetentionPolicy`` and
``UpdateRetentionPolicy`` (resource type ``RetentionPolicy``, ours: the guide has none).

A project's ``admin`` key manages its own project's keys only: it lists them, creates them (the
project defaults to its own) and revokes them; another project's key is "not found", as if it did
not exist. Keys for ``*`` (every project) and the retention settings, which apply to every project,
are the bootstrap admin key's alone (``tenancy.managed_project``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from query.api.audit import audit_operation
from query.api.errors import error_response
from query.api.json_body import read_json
from query.api.tenancy import managed_project
from store.api_keys import ALL_PROJECTS, KeyStore, Principal
from store.audit import AuditLog
from store.events import EventLog, Retention

MAX_FIELD_CHARS = 256


def _key_json(p: Principal) -> dict[str, Any]:
    return {
        "key_id": p.key_id,
        "name": p.name,
        "project_id": p.project_id,
        "permissions": list(p.permissions),
    }


def build_admin_router(keys: KeyStore, audit: AuditLog, events: EventLog) -> APIRouter:
    router = APIRouter(prefix="/api/v1/admin")

    def _retention_json() -> dict[str, int]:
        return {"pod_events_ms": events.retention.pod_ms, "service_events_ms": events.retention.service_ms}

    async def refused(request: Request, trace_name: str, resource_type: str, message: str) -> Any:
        await run_in_threadpool(
            audit_operation, audit, request, trace_name, resource_type, code=403, message=message
        )
        return error_response("forbidden", message)

    global_only = "only the bootstrap admin key manages settings of every project"

    @router.get("/retention")
    async def get_retention(request: Request) -> Any:
        if managed_project() is not None:
            return await refused(request, "GetRetentionPolicy", "RetentionPolicy", global_only)
        await run_in_threadpool(
            audit_operation, audit, request, "GetRetentionPolicy", "RetentionPolicy", "events"
        )
        return {"status": "success", "data": _retention_json()}

    @router.put("/retention")
    async def put_retention(request: Request) -> Any:
        if managed_project() is not None:
            return await refused(request, "UpdateRetentionPolicy", "RetentionPolicy", global_only)
        try:
            body = await read_json(request)
            if not isinstance(body, dict) or set(body) - {"pod_events_ms", "service_events_ms"}:
                raise ValueError("body: an object with pod_events_ms and/or service_events_ms")
            values = {k: body.get(k, v) for k, v in _retention_json().items()}
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values.values()):
                raise ValueError("retention: positive integers (milliseconds)")
        except ValueError as err:
            await run_in_threadpool(
                audit_operation, audit, request, "UpdateRetentionPolicy", "RetentionPolicy", "events",
                code=400, message=str(err),
            )  # fmt: skip
            return error_response("bad_data", str(err))
        events.retention = Retention(values["pod_events_ms"], values["service_events_ms"])
        await run_in_threadpool(
            audit_operation, audit, request, "UpdateRetentionPolicy", "RetentionPolicy", "events", body=values
        )
        return {"status": "success", "data": _retention_json()}

    own_keys_only = "a project's admin key manages only its own project's keys"

    @router.post("/keys")
    async def create(request: Request) -> Any:
        try:
            body = await read_json(request)
            if not isinstance(body, dict):
                raise ValueError("body: expected a JSON object")
            unknown = set(body) - {"project_id", "permissions", "name"}
            if unknown:
                raise ValueError(f"{sorted(unknown)[0]}: unknown field")
            perms = body.get("permissions", ["read"])
            if not isinstance(perms, list):
                raise ValueError("permissions: expected a list")
            for field in ("project_id", "name"):
                value = body.get(field, "")
                if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
                    raise ValueError(f"{field}: expected a string of at most {MAX_FIELD_CHARS} characters")
            scope = managed_project()
            project = body.get("project_id") or scope or ""
            if scope is not None and (scope == ALL_PROJECTS or project != scope):
                return await refused(request, "CreateApiKeyV2", "apikeyV2", own_keys_only)
            principal, secret = await run_in_threadpool(
                keys.create, project, perms, str(body.get("name", ""))
            )
        except ValueError as err:
            await run_in_threadpool(
                audit_operation, audit, request, "CreateApiKeyV2", "apikeyV2", code=400, message=str(err)
            )
            return error_response("bad_data", str(err))
        await run_in_threadpool(
            audit_operation,
            audit,
            request,
            "CreateApiKeyV2",
            "apikeyV2",
            principal.key_id,
            principal.name,
            body=_key_json(principal),
            project_id=principal.project_id,
        )
        return {"status": "success", "data": {**_key_json(principal), "key": secret}}

    @router.get("/keys")
    async def list_keys(request: Request) -> Any:
        project = request.query_params.get("project_id") or None
        scope = managed_project()
        if scope is not None:
            if scope == ALL_PROJECTS or project not in (None, scope):
                return await refused(request, "ListApiKeyV2", "apikeyV2", own_keys_only)
            project = scope
        found = await run_in_threadpool(keys.list, project)
        await run_in_threadpool(
            audit_operation, audit, request, "ListApiKeyV2", "apikeyV2", project_id=project or ""
        )
        return {"status": "success", "data": [_key_json(p) for p in found]}

    @router.delete("/keys/{key_id}")
    async def delete(key_id: str, request: Request) -> Any:
        scope = managed_project()
        if scope == ALL_PROJECTS:
            return await refused(request, "DeleteApiKeyV2", "apikeyV2", own_keys_only)
        revoked = await run_in_threadpool(keys.revoke, key_id, scope)
        code = 200 if revoked else 404
        await run_in_threadpool(
            audit_operation,
            audit,
            request,
            "DeleteApiKeyV2",
            "apikeyV2",
            key_id,
            revoked.name if revoked else "",
            code=code,
            project_id=revoked.project_id if revoked else "",
        )
        if revoked is None:
            return error_response("not_found", f"no live key {key_id!r}")
        return {"status": "success", "data": _key_json(revoked)}

    return router
