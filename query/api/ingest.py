"""``POST /api/v1/ingest``: batches shipped by sidecars running in other processes.

The embedded store belongs to one process (the server), so sidecars elsewhere send their batches
here rather than opening chDB themselves.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from model.wire import decode_batch
from query.api.errors import error_response, success
from store.writes import SampleWriter


def build_ingest_router(writer: SampleWriter) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.post("/ingest")
    async def ingest(request: Request) -> Any:
        try:
            batch = decode_batch(json.loads(await request.body()))
        except ValueError as err:  # includes JSONDecodeError
            return error_response("bad_data", f"malformed batch: {err}")
        written = await run_in_threadpool(writer.write, batch)
        return success({"samples": written})

    return router
