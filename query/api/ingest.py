"""``POST /api/v1/ingest``: batches shipped by sidecars running in other processes.

The embedded store belongs to one process (the server), so sidecars elsewhere send their batches
here rather than opening chDB themselves. With the server's ingest log (``exporters/ingest_log.py``)
a batch is answered once it is written to that write-ahead log, and ``samples`` counts the samples
accepted (the writer's guard counts what it drops when the batch reaches the store); without one, once
stored, and ``samples`` counts those stored. A store that is down is no error with a log (the batch
waits in it); 503 only when the log is full or its disk fails, and the sidecar keeps the batch.

The door is remote write's (``store.admission``): a batch holding one sample the store would refuse
(a timestamp outside what its tables hold or the guard's window, a label set that is not valid) or
more than ``max_samples_per_request`` samples is refused whole with a 400 naming the series and the
reason, so nothing acknowledged can later fail an insert block holding other clients' samples. A body
over ``max_body_bytes`` is a 413; any body that is not the wire form (``model.wire``: not JSON, not
UTF-8, nested past the parser's depth, numbers the types cannot hold, wrong types) is a 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from exporters.errors import is_retryable
from exporters.ingest_log import IngestLog, IngestLogFull
from exporters.segments import columns_of
from model.labels import to_labels
from model.series import Sample
from model.wire import decode_batch
from query.api.errors import error_response, render_json, success
from query.api.json_body import parse_json
from query.api.params import bounded_body
from query.api.tenancy import current_project
from store.admission import Admission, count_refusal
from store.backend import StoreUnavailableError
from store.insert_errors import is_transient
from store.writes import SampleWriter

# A sidecar ships at most ``max_batch_samples`` (10,000 by default) a batch, a few MiB as JSON.
DEFAULT_MAX_BODY_BYTES = 32 << 20


class BodyTooLargeError(ValueError):
    """The request body is over ``max_body_bytes``."""


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


def sample_count(body: Any) -> int:
    """How many samples a parsed body claims (0 where it is not the wire form: decoding says why)."""
    if not isinstance(body, dict) or not isinstance(body.get("series"), list):
        return 0
    return sum(
        len(entry["samples"])
        for entry in body["series"]
        if isinstance(entry, dict) and isinstance(entry.get("samples"), list)
    )


def parse_batch(raw: bytes, max_samples: int) -> list[Sample]:
    """The samples of a wire-form body; ValueError naming what is malformed, ``OverflowError``
    where it holds more than ``max_samples`` (counted before a ``Sample`` is made)."""
    body = parse_json(raw, max_bytes=len(raw))  # the size was bounded by ``bounded_body``
    if sample_count(body) > max_samples:
        raise OverflowError
    try:
        return decode_batch(body)
    except (TypeError, OverflowError, RecursionError) as err:  # a wrong type decode_batch does not name
        raise ValueError(f"{type(err).__name__}: {err}") from None


def build_ingest_router(
    writer: SampleWriter,
    log: IngestLog | None = None,
    *,
    admission: Admission | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> APIRouter:
    """The route; ``admission`` (default: one of the writer's guard with the default caps) counts
    what it refuses per reason (``infersight.self_series``)."""
    router = APIRouter(prefix="/api/v1")
    door = admission or Admission(writer.guard)
    router.admission = door  # type: ignore[attr-defined]  # read by the server's own series

    @router.post("/ingest")
    async def ingest(request: Request) -> Any:
        try:
            raw = await bounded_body(request, max_body_bytes, "request body", BodyTooLargeError)
        except BodyTooLargeError as err:
            return render_json({"status": "error", "errorType": "bad_data", "error": str(err)}, 413)
        except ClientDisconnect:
            return error_response("bad_data", "the client went away before its body was whole")
        max_samples = door.max_samples_per_request
        try:
            batch = await run_in_threadpool(parse_batch, raw, max_samples)
        except OverflowError:
            refusal = count_refusal("samples", max_samples)
            door.count(refusal, max_samples + 1)
            return error_response("bad_data", str(refusal))
        except ValueError as err:
            return error_response("bad_data", f"malformed batch: {err}")
        project = current_project()
        if project is not None:
            try:
                batch = confine(batch, project)
            except PermissionError as err:
                return error_response("forbidden", str(err))
        refusal = await run_in_threadpool(door.check_samples, batch)
        if refusal is not None:
            return error_response("bad_data", str(refusal))
        return await keep(batch)

    async def keep(batch: list[Sample]) -> Any:
        """Log (or store) an admitted batch: 503 where it cannot be kept now (the sidecar retries),
        400 where the store refused what the door let through."""
        try:
            if log is None:
                written = await run_in_threadpool(writer.write, batch)
                return success({"samples": written})
            await run_in_threadpool(log.append, columns_of(batch))
        except (IngestLogFull, OSError) as err:
            return error_response("unavailable", f"ingest log cannot take the batch: {err}")
        except StoreUnavailableError as err:
            return error_response("unavailable", f"store unavailable: {err}")
        except Exception as err:  # the store refused what the door let through: this batch only
            if is_retryable(err) or is_transient(err):
                return error_response("unavailable", f"store unavailable: {err}")
            return error_response("bad_data", f"store refused the batch: {type(err).__name__}: {err}")
        return success({"samples": len(batch)})

    return router
