"""``/api/v1/metadata``: the TYPE, HELP and UNIT targets expose, as Prometheus answers them.

Sidecars ship what their targets' ``# TYPE``/``# HELP``/``# UNIT`` lines say
(``POST /api/v1/ingest/metadata``, through a disk buffer like the samples); the store keeps the
newest per project, target and metric (``store/metadata.py``). The answer has Prometheus' shape,
``{"metric": [{"type", "help", "unit"}, …]}``, one entry per distinct triple the targets expose,
with its ``limit`` (metrics), ``limit_per_metric`` (entries per metric) and ``metric`` parameters.

Two more sources fill what no target says:

- the guide's series (``infer_service_*``, ``ma_container_*``) are made by infersight itself, so
  their entry is the guide's description (``model/catalog.py``), first in their list;
- a metric in the store with no metadata at all (remote-written, or stored before its sidecar
  shipped any) gets the type its name implies (``_bucket``+``_count`` → histogram, ``_total`` →
  counter, else ``unknown``) with empty help: what Grafana's query builder needs, never a wrong
  guess, only less said.

Tenancy: a key confined to a project reads that project's metadata and series only, and writes
metadata only into its own project, with the ``write`` permission.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from loguru import logger

from model.catalog import GUIDE_METADATA
from model.metadata import FamilyMetadata, MetadataError, MetadataRecord
from query.api.errors import error_response, render_json, success
from query.api.json_body import parse_json
from query.api.params import MAX_TIME_MS, MIN_TIME_MS, BadParamError, bounded_body, parse_limit
from query.api.tenancy import CURRENT, current_project
from store.backend import StoreUnavailableError
from store.metadata import MetadataStore

MetadataEntry = dict[str, str]
INGEST_PATH = "/api/v1/ingest/metadata"
MAX_INGEST_BYTES = 4 * 1024 * 1024
MAX_INGEST_RECORDS = 10_000
MAX_FORM_BYTES = 64 * 1024  # three short parameters; a larger form is not a metadata request
MAX_PARAMS = 64
LOOKUP_TIMEOUT_S = 30.0
LOOKUP_THREADS = 4
# The parts of a family's samples, by type: a stored family hides the name-implied entry of its parts.
_PART_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}


def _entry(kind: str) -> list[MetadataEntry]:
    return [{"type": kind, "help": "", "unit": ""}]


def from_names(names: Iterable[str]) -> dict[str, list[MetadataEntry]]:
    """Metadata implied by names alone, as Prometheus' ``data`` member: ``{"up": [{"type": …}]}``."""
    present = set(names)
    families: dict[str, list[MetadataEntry]] = {}
    histogram_parts: set[str] = set()
    for name in sorted(present):
        base = name.removesuffix("_bucket")
        if base != name and f"{base}_count" in present:
            families[base] = _entry("histogram")
            histogram_parts.update((name, f"{base}_count", f"{base}_sum"))
    for name in sorted(present - histogram_parts):
        families[name] = _entry("counter" if name.endswith("_total") else "unknown")
    return dict(sorted(families.items()))


def merge(stored: Iterable[FamilyMetadata], names: Iterable[str]) -> dict[str, list[MetadataEntry]]:
    """Every metric's entries: the guide's first for its series, then what targets expose (each
    distinct triple once); a metric with neither gets the entry its name implies."""
    exposed: dict[str, list[MetadataEntry]] = {}
    hidden: set[str] = set()
    for family in stored:
        entries = exposed.setdefault(family.metric, [])
        if family.entry() not in entries:
            entries.append(family.entry())
        hidden.update(family.metric + suffix for suffix in _PART_SUFFIXES.get(family.type, ()))
    answer: dict[str, list[MetadataEntry]] = {}
    for name, implied in from_names(n for n in names if n not in hidden).items():
        answer[name] = exposed.get(name) or implied
    for name, entries in exposed.items():
        answer.setdefault(name, entries)
    for name in answer:
        guide = GUIDE_METADATA.get(name)
        if guide is not None:
            answer[name] = [guide.entry(), *(e for e in exposed.get(name, []) if e != guide.entry())]
    return dict(sorted(answer.items()))


def select(
    metadata: dict[str, list[MetadataEntry]], metric: str | None, limit: int, limit_per_metric: int = -1
) -> dict[str, list[MetadataEntry]]:
    """Prometheus' filters: only ``metric`` when given; at most ``limit`` metrics when ``limit >= 0``;
    at most ``limit_per_metric`` entries per metric when it is positive."""
    if metric:
        metadata = {metric: metadata[metric]} if metric in metadata else {}
    if limit >= 0:
        metadata = dict(list(metadata.items())[:limit])
    if limit_per_metric > 0:
        metadata = {name: entries[:limit_per_metric] for name, entries in metadata.items()}
    return metadata


def _decode(raw: bytes, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMS
        )
    except UnicodeError:
        raise BadParamError(f"invalid parameter: the {where} is not valid UTF-8") from None
    except ValueError:
        raise BadParamError(f"too many parameters: more than {MAX_PARAMS}") from None


async def _params(request: Request) -> dict[str, str]:
    """Query-string and form parameters (the first of each name), decoded strictly."""
    pairs = _decode(request.scope.get("query_string", b""), "query string")
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        pairs += _decode(await bounded_body(request, MAX_FORM_BYTES, "form body"), "form body")
    found: dict[str, str] = {}
    for key, value in pairs:
        found.setdefault(key, value)
    return found


def _records(body: bytes, project: str | None) -> list[MetadataRecord]:
    """The records of an ingest body; a confined caller's go to its project (or are refused)."""
    try:
        data = parse_json(body, max_bytes=len(body))  # the size was bounded by ``bounded_body``
    except ValueError as err:
        raise MetadataError(str(err)[:200]) from None
    items = data.get("metadata") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise MetadataError('expected {"metadata": [records]}')
    if len(items) > MAX_INGEST_RECORDS:
        raise MetadataError(f"more than {MAX_INGEST_RECORDS} records in one request")
    records = [MetadataRecord.from_wire(item) for item in items]
    if project is None:
        return records
    if any(r.project_id not in ("", project) for r in records):
        raise PermissionError("metadata may only be written to the key's own project")
    return [r if r.project_id else _in_project(r, project) for r in records]


def _in_project(record: MetadataRecord, project: str) -> MetadataRecord:
    return MetadataRecord(
        record.family, project, record.service_id, record.instance_name, record.source, record.ts_ms
    )


def build_metadata_router(store: MetadataStore, querier: Any) -> APIRouter:
    """``GET|POST /api/v1/metadata`` and ``POST /api/v1/ingest/metadata``; ``querier`` (tenant-scoped)
    lists the metric names in the store."""
    router = APIRouter(prefix="/api/v1")
    pool = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="metadata")

    async def in_pool(job: Callable[[], Any]) -> Any:
        """Run ``job`` in the pool with the caller's context (its project scope), within the timeout."""
        context = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(pool, context.run, job)
        return await asyncio.wait_for(future, LOOKUP_TIMEOUT_S)

    async def metadata(request: Request) -> Response:
        try:
            params = await _params(request)
            limit = parse_limit(params.get("limit"))
            limit_per_metric = parse_limit(params.get("limit_per_metric"), "limit_per_metric")
        except BadParamError as err:
            return error_response("bad_data", str(err))
        metric = params.get("metric") or None
        project = current_project()

        def look_up() -> Response:
            stored = store.read(project, metric)
            names = querier.label_values("__name__", [], MIN_TIME_MS, MAX_TIME_MS) if limit != 0 else []
            if metric:
                names = [n for n in names if n == metric or n.startswith(metric)]
            return render_json(success(select(merge(stored, names), metric, limit, limit_per_metric)))

        try:
            response: Response = await in_pool(look_up)
            return response
        except StoreUnavailableError as err:
            return error_response("unavailable", str(err))
        except TimeoutError:
            return error_response("timeout", f"metadata lookup took longer than {LOOKUP_TIMEOUT_S:g} s")
        except Exception as exc:  # a bug: logged, still answered in the API's shape
            logger.opt(exception=exc).error("/api/v1/metadata failed")
            return error_response("internal", f"{type(exc).__name__}: {exc}")

    async def ingest(request: Request) -> Response:
        """Metadata records shipped by sidecars in other processes (``MetadataRecord.to_wire``)."""
        principal = CURRENT.get()
        if principal is not None and not principal.may("write"):
            return error_response("forbidden", "writing metadata needs the write permission")
        try:
            body = await bounded_body(request, MAX_INGEST_BYTES, "body")
        except BadParamError as err:
            return error_response("bad_data", str(err))
        project = current_project()

        def write() -> int:
            return store.write(_records(body, project))

        started = time.monotonic()
        try:
            written = await in_pool(write)
        except MetadataError as err:
            return error_response("bad_data", f"malformed metadata: {err}")
        except PermissionError as err:
            return error_response("forbidden", str(err))
        except (StoreUnavailableError, TimeoutError) as err:  # the sidecar keeps them and sends again
            return error_response("unavailable", f"metadata not stored: {err or 'timed out'}")
        except Exception as exc:  # the store refused: logged; the sidecar keeps them and sends again
            logger.opt(exception=exc).error("storing metadata failed")
            return error_response("unavailable", f"metadata not stored: {type(exc).__name__}")
        logger.debug("stored {} metadata records in {:.3f} s", written, time.monotonic() - started)
        return render_json(success({"records": written}))

    router.add_api_route("/metadata", metadata, methods=["GET", "POST"])
    router.add_api_route("/ingest/metadata", ingest, methods=["POST"])
    return router
