"""``POST /api/v1/ingest/exemplars``: the ingress proxies' exemplars, shipped by sidecars elsewhere.

Reading them back is Prometheus' ``/api/v1/query_exemplars`` (prometheus_v1.py). A confined key
writes only its own project's exemplars: a series without ``project_id`` gets the key's (as samples
do in ``/api/v1/ingest``), one naming another project refuses the batch. The body is bounded
(``MAX_BODY_BYTES``) and read strictly (``exemplars_from_wire``): anything else is a 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from loguru import logger
from starlette.requests import ClientDisconnect

from collector.proxy.exemplars import Exemplar, exemplars_from_wire
from model.labels import to_labels
from query.api.errors import error_response, success
from query.api.json_body import parse_json
from query.api.params import BadParamError, bounded_body
from query.api.tenancy import current_project
from store.admission import in_time_window
from store.backend import Backend, StoreUnavailableError
from store.exemplars import ExemplarStore
from store.limits import IngestGuard

MAX_BODY_BYTES = 8 << 20  # 10,000 exemplars with their series' labels: a few MiB


def confine(exemplars: list[Exemplar], project: str) -> list[Exemplar]:
    """Exemplars of a confined caller: its ``project_id`` added where missing, others refused."""
    out = []
    for e in exemplars:
        series = dict(e.series)
        if series.setdefault("project_id", project) != project:
            raise PermissionError("exemplars may only be written to the key's own project_id")
        out.append(Exemplar(to_labels(series), e.labels, e.value, e.ts_ms))
    return out


def _parse(raw: bytes) -> list[Exemplar]:
    return exemplars_from_wire(parse_json(raw, max_bytes=MAX_BODY_BYTES))


def build_exemplar_router(backend: Backend, guard: IngestGuard | None = None) -> APIRouter:
    """``guard``: the samples' time window (``store.limits.max_future_s``/``max_age_s``); exemplars
    dated outside it, or outside what the store can hold, are skipped and counted in the answer."""
    router = APIRouter(prefix="/api/v1")
    store = ExemplarStore(backend)

    @router.post("/ingest/exemplars")
    async def ingest(request: Request) -> Any:
        try:
            raw = await bounded_body(request, MAX_BODY_BYTES, "request body")
            exemplars = await run_in_threadpool(_parse, raw)
        except (BadParamError, ValueError) as err:
            return error_response("bad_data", f"malformed exemplars: {err}")
        except ClientDisconnect:
            return error_response("bad_data", "the client went away before its body was whole")
        project = current_project()
        if project is not None:
            try:
                exemplars = confine(exemplars, project)
            except PermissionError as err:
                return error_response("forbidden", str(err))
        kept = in_time_window(exemplars, lambda e: e.ts_ms, guard)
        if len(kept) < len(exemplars):
            logger.warning(
                "exemplars: {} dated outside the store's window skipped", len(exemplars) - len(kept)
            )
        try:
            written = await run_in_threadpool(store.write, kept)
        except StoreUnavailableError as err:
            return error_response("unavailable", f"exemplars not stored: {err}")
        return success({"exemplars": written, "out_of_bounds": len(exemplars) - len(kept)})

    return router
