"""``GET /api/v1/sketch_quantiles``: TPxx of a metric for a service/deployment/pod, per period.

ClickHouse merges the 10 s window sketches of every matching pod into one histogram per period
(``sumMap``); the quantiles are read from those merged buckets here, within the sketches' relative
error (0.54 % at scale 6) of the exact quantile of every value in the period — unlike
``histogram_quantile``, whose error is the width of the classic bucket the quantile falls in.
The quantile code is the collector's pure sketch package, shared rather than copied.
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from loguru import logger

from collector.window import rows_from_wire
from model.durations import parse_duration_ms
from model.labels import METRIC_NAME, to_labels
from query.api.errors import error_response, success
from query.api.json_body import read_json
from query.api.params import BadParamError, parse_time_ms
from query.api.tenancy import current_project
from query.sketch_quantiles import period_quantiles
from sketch import relative_error
from store.admission import in_time_window, label_refusal
from store.backend import Backend, StoreUnavailableError
from store.limits import IngestGuard, Limits
from store.sketches import IDENTITY_COLUMNS, MAX_SPAN_MS, MergedSketch, SketchReader, SketchWriter

DEFAULT_QUANTILES = (0.5, 0.9, 0.99, 0.999)
WINDOW_MS = 10_000  # the collector's window width: periods are whole numbers of windows


def build_sketch_router(backend: Backend, guard: IngestGuard | None = None) -> APIRouter:
    """The route, answering from the ``sketches`` table behind ``backend``. ``guard``: the samples'
    limits, which rows are held to as well: label sets as the door checks them (a 400), and
    windows dated outside its time window or the store's range skipped and counted."""
    router = APIRouter(prefix="/api/v1")
    reader = SketchReader(backend)
    writer = SketchWriter(backend)

    @router.post("/sketches")
    async def ingest(request: Request) -> Any:
        """Closed sketch windows shipped by sidecars in other processes (``rows_to_wire`` form).

        A row sent again with its ``id`` (a retry whose answer was lost) is stored again and read
        once (``store.sketch_dedup``)."""
        try:
            rows = rows_from_wire(await read_json(request))
        except (ValueError, KeyError, TypeError) as err:
            return error_response("bad_data", f"malformed sketch rows: {err}")
        limits = guard.limits if guard is not None else Limits()
        for row in rows:
            refusal = label_refusal(to_labels({**dict(row.labels), METRIC_NAME: row.metric}), limits)
            if refusal is not None:
                return error_response("bad_data", f"sketch row refused: {refusal}")
        kept = in_time_window(rows, lambda row: row.window_start_ms, guard)
        if len(kept) < len(rows):
            logger.warning(
                "sketches: {} row(s) dated outside the store's window skipped", len(rows) - len(kept)
            )
        project = current_project()
        if project is not None and any(dict(r.labels).get("project_id", project) != project for r in rows):
            return error_response("forbidden", "sketches may only be written to the key's own project")
        try:
            written = await run_in_threadpool(writer.write, kept)
        except StoreUnavailableError as err:  # the sidecar keeps the rows and sends them again
            return error_response("unavailable", f"sketch rows not stored: {err}")
        return success({"rows": written, "out_of_bounds": len(rows) - len(kept)})

    @router.get("/sketch_quantiles")
    async def sketch_quantiles(request: Request) -> Any:
        try:
            query = _parse(dict(request.query_params))
        except BadParamError as err:
            return error_response("bad_data", str(err))
        try:
            merged = await run_in_threadpool(
                reader.merged,
                query["metric"],
                query["filters"],
                query["start_ms"],
                query["end_ms"],
                query["period_ms"],
            )
        except StoreUnavailableError as err:  # a server store that is down or overloaded: retry later
            return error_response("unavailable", str(err))
        except TimeoutError as err:
            return error_response("timeout", str(err))
        # Straight to JSON: FastAPI's jsonable_encoder walks every value (slow for 21,600 periods).
        return JSONResponse(success(_answer(query, merged)))

    return router


def _parse(params: dict[str, str]) -> dict[str, Any]:
    metric = params.get("metric", "")
    if not metric:
        raise BadParamError('invalid parameter "metric": a metric name is required')
    now_ms = int(time.time() * 1000)
    end_ms = parse_time_ms(params.get("end"), "end", now_ms)
    start_ms = parse_time_ms(params.get("start"), "start", end_ms - 3_600_000)
    if end_ms < start_ms:
        raise BadParamError('invalid parameter "end": end timestamp must not be before start time')
    if end_ms - start_ms > MAX_SPAN_MS:
        raise BadParamError('invalid parameter "end": the span may be at most 15 days')
    text = params.get("period", "1m")
    try:
        period_ms = parse_duration_ms(text)
    except ValueError:
        raise BadParamError(
            f'invalid parameter "period": cannot parse "{text}" to a valid duration'
        ) from None
    if period_ms <= 0 or period_ms % WINDOW_MS:
        raise BadParamError(f'invalid parameter "period": "{text}" is not a positive multiple of 10s')
    return {
        "metric": metric,
        "filters": _scoped({name: params[name] for name in IDENTITY_COLUMNS if params.get(name)}),
        "start_ms": start_ms,
        "end_ms": end_ms,
        "period_ms": period_ms,
        "qs": _quantiles(params.get("q")),
    }


def _scoped(filters: dict[str, str]) -> dict[str, str]:
    """A caller confined to one project reads only that project's sketches."""
    project = current_project()
    return filters if project is None else {**filters, "project_id": project}


def _quantiles(text: str | None) -> tuple[float, ...]:
    if not text:
        return DEFAULT_QUANTILES
    try:
        qs = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise BadParamError(f'invalid parameter "q": cannot parse "{text}" to quantiles') from None
    if not all(0.0 <= q <= 1.0 for q in qs):
        raise BadParamError(f'invalid parameter "q": quantiles must be in [0, 1], got "{text}"')
    return qs


def _answer(query: dict[str, Any], merged: list[MergedSketch]) -> dict[str, Any]:
    starts, sketches, values = period_quantiles(merged, query["qs"])
    keys = [_key(q) for q in query["qs"]]
    periods = [
        {
            "start": start_ms / 1000,
            "end": (start_ms + query["period_ms"]) / 1000,
            "count": c.count,
            "sum": _number(c.sum),
            "avg": _number(c.sum / c.count),
            "min": _number(c.min),
            "max": _number(c.max),
            "quantiles": {key: _number(v) for key, v in zip(keys, row.tolist(), strict=True)},
        }
        for start_ms, c, row in zip(starts, sketches, values, strict=True)
    ]
    return {
        "metric": query["metric"],
        "filters": query["filters"],
        "start": query["start_ms"] / 1000,
        "end": query["end_ms"] / 1000,
        "period": query["period_ms"] / 1000,
        "relative_error": max((relative_error(c.scale) for c in sketches), default=None),
        "periods": periods,
    }


def _key(q: float) -> str:
    return repr(q)  # 0.5 → "0.5", 0.999 → "0.999": the q as the client wrote it, in shortest form


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity (a sum can overflow): those become null."""
    return float(value) if math.isfinite(value) else None
