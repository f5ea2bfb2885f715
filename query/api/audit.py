"""Audit trail API, shaped like Cloud Trace Service's ``GET /v3/{project_id}/traces``.

``POST /api/v1/audit/traces`` takes traces from the inference platform (one object, or
``{"traces": [...]}``); ``GET`` searches them newest first with a ``next`` cursor;
``GET /api/v1/audit/verify`` checks the hash chain over a time range.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from model.audit import TraceError, trace_from_json
from query.api.errors import error_response
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


def build_audit_router(log: AuditLog) -> APIRouter:
    router = APIRouter(prefix="/api/v1/audit")

    @router.post("/traces")
    async def ingest(request: Request) -> Any:
        try:
            body = json.loads(await request.body())
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
                filters=tuple(
                    (column, request.query_params[param])
                    for param, column in _FILTER_PARAMS.items()
                    if request.query_params.get(param)
                ),
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
        try:
            start, end = _int_param(request, "from", 0), _int_param(request, "to", 2**62)
        except ValueError as err:
            return error_response("bad_data", str(err))
        checked, broken = await run_in_threadpool(log.verify, start, end)
        tampering = None
        if broken is not None:
            tampering = {
                "kind": broken.kind,
                "seq": broken.seq,
                "trace_id": broken.trace_id,
                "detail": broken.detail,
            }
        return {
            "status": "success",
            "data": {"checked": checked, "ok": broken is None, "tampering": tampering},
        }

    return router
