"""``POST /api/v1/ingest``: batches shipped by sidecars running in other processes.

The embedded store belongs to one process (the server), so sidecars elsewhere send their batches
here rather than opening chDB themselves. With the server's ingest log (``exporters/ingest_log.py``)
a batch is answered once it is written to that write-ahead log, and ``samples`` counts the samples
accepted (the writer's guard counts what it drops when the batch reaches the store); without one, once
stored, and ``samples`` counts those stored. A store that is down is no error with a log (the batch
waits in it); 503 only when the log is full or its disk fails, and the sidecar keeps the batch.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from exporters.ingest_log import IngestLog, IngestLogFull
from exporters.segments import columns_of
from model.labels import to_labels
from model.series import Sample
from model.wire import decode_batch
from query.api.errors import error_response, success
from query.api.tenancy import current_project
from store.writes import SampleWriter


def confine(batch: list[Sample], project: str) -> list[Sample]:
    """Samples of a confined caller: its ``project_id`` added where missing, others refused."""
    out = []
    for sample in batch:
        labels = dict(sample.labels)
        if labels.get("project_id", project) != project:
            raise PermissionError("samples may only be written to the key's own project_id")
        if "project_id" not in labels:
            labels["project_id"] = project
            sample = Sample(to_labels(labels), sample.ts_ms, sample.value)
        out.append(sample)
    return out


def build_ingest_router(writer: SampleWriter, log: IngestLog | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.post("/ingest")
    async def ingest(request: Request) -> Any:
        try:
            batch = decode_batch(json.loads(await request.body()))
        except ValueError as err:  # includes JSONDecodeError
            return error_response("bad_data", f"malformed batch: {err}")
        project = current_project()
        if project is not None:
            try:
                batch = confine(batch, project)
            except PermissionError as err:
                return error_response("forbidden", str(err))
        if log is None:
            written = await run_in_threadpool(writer.write, batch)
            return success({"samples": written})
        try:
            await run_in_threadpool(log.append, columns_of(batch))
        except (IngestLogFull, OSError) as err:
            return error_response("unavailable", f"ingest log cannot take the batch: {err}")
        return success({"samples": len(batch)})

    return router
