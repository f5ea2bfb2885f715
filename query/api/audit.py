"""Audit trail API, shaped like Cloud Trace Service's ``GET /v3/{project_id}/traces``.

``POST /api/v1/audit/traces`` takes traces from the inference platform (one object, or
``{"traces": [...]}``); ``GET`` searches them newest first with a ``next`` cursor;
``GET /api/v1/audit/verify`` checks the hash chain over a time range against the signed digests
kept outside the database (``store.audit_verify``): intact or not, records checked, covered by
digests up to which seq, how many are not yet covered, and every problem found.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from model.audit import Trace, TraceError, TraceUser, mask_secrets, trace_from_json
from query.api.errors import error_response
from query.api.json_body import read_json
from query.api.tenancy import CURRENT, current_project
from store.audit import AuditLog, TraceQuery

MAX_LIMIT = 200  # CTS's page limit
# Query parameter → column; CTS calls the user filter `user`.
_FILTER_PARAMS = {
    "trace_name": "trace_name",
    "trace_rating": "trace_rating",
    "trace_type": "trace_type",
    "resource_type": "resource_type",
    "resource_id": "resource_id",
    "resource_name": "resource_name",
    "user": "user_name",
    "source_ip": "source_ip",
    "project_id": "project_id",
    "trace_id": "trace_id",
}


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected an integer (epoch milliseconds for from/to)") from None


def _scoped_filters(request: Request) -> tuple[tuple[str, str], ...]:
    filters = [
        (column, request.query_params[param])
        for param, column in _FILTER_PARAMS.items()
        if request.query_params.get(param) and not (column == "project_id" and current_project())
    ]
    project = current_project()
    if project is not None:
        filters.append(("project_id", project))  # a confined caller sees only its own project
    return tuple(filters)


def build_audit_router(log: AuditLog) -> APIRouter:
    router = APIRouter(prefix="/api/v1/audit")

    @router.post("/traces")
    async def ingest(request: Request) -> Any:
        try:
            body = await read_json(request)
            items = body["traces"] if isinstance(body, dict) and "traces" in body else [body]
            if not isinstance(items, list):
                raise TraceError("traces: expected a list")
            traces = []
            for i, item in enumerate(items):
                try:
                    traces.append(trace_from_json(item))
                except TraceError as err:
                    raise TraceError(f"traces[{i}].{err}" if len(items) > 1 else str(err)) from None
        except (ValueError, KeyError) as err:  # JSONDecodeError and TraceError are ValueErrors
            return error_response("bad_data", str(err))
        project = current_project()
        if project is not None:
            if any(t.project_id not in ("", project) for t in traces):
                return error_response("forbidden", "traces may only be written to the key's own project")
            traces = [t if t.project_id else dataclasses.replace(t, project_id=project) for t in traces]
        seqs = await run_in_threadpool(log.append, traces)
        return {"status": "success", "data": {"trace_ids": [t.trace_id for t in traces], "seq": seqs}}

    @router.get("/traces")
    async def search(request: Request) -> Any:
        try:
            limit = _int_param(request, "limit", 10)
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError(f"limit: must be between 1 and {MAX_LIMIT}")
            query = TraceQuery(
                from_ms=_int_param(request, "from", 0),
                to_ms=_int_param(request, "to", 2**62),
                filters=_scoped_filters(request),
                text=request.query_params.get("q", ""),
                limit=limit,
                cursor=request.query_params.get("next") or None,
            )
            traces, marker = await run_in_threadpool(log.search, query)
        except ValueError as err:
            return error_response("bad_data", str(err))
        return {"meta_data": {"count": len(traces), "marker": marker}, "traces": traces}

    @router.get("/verify")
    async def verify(request: Request) -> Any:
        if current_project() is not None:  # one hash chain over every project: not one project's to check
            return error_response("forbidden", "verifying the audit chain needs a key of every project (*)")
        try:
            start, end = _int_param(request, "from", 0), _int_param(request, "to", 2**62)
        except ValueError as err:
            return error_response("bad_data", str(err))
        verdict = await run_in_threadpool(log.verify, start, end)
        return {"status": "success", "data": verdict.to_json()}

    return router


def audit_operation(
    log: AuditLog,
    request: Request,
    trace_name: str,
    resource_type: str,
    resource_id: str = "",
    resource_name: str = "",
    *,
    code: int = 200,
    body: Any = None,
    message: str = "",
    project_id: str = "",
) -> None:
    """Write the trace of one of infersight's own management operations (blocking)."""
    principal = CURRENT.get()
    user = TraceUser(principal.key_id, principal.name) if principal else TraceUser(name="anonymous")
    trace = Trace(
        trace_name=trace_name,
        resource_type=resource_type,
        time_ms=int(time.time() * 1000),
        project_id=project_id or (principal.project_id if principal else ""),
        trace_rating="normal" if code < 400 else "warning",
        trace_type="ApiCall",
        resource_id=resource_id,
        resource_name=resource_name,
        user=user,
        source_ip=request.client.host if request.client else "",
        request=json.dumps(mask_secrets(body), sort_keys=True) if body is not None else "",
        code=str(code),
        message=message,
    )
    log.append([trace])
