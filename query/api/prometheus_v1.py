"""Prometheus HTTP API v1 over the store: the routes Grafana's Prometheus data source calls.

Every route accepts GET query strings and POST ``application/x-www-form-urlencoded`` bodies, as
Prometheus does (Grafana switches to POST for long queries).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from query.api.errors import error_response, success
from query.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    BadParamError,
    parse_match,
    parse_step_ms,
    parse_time_ms,
)
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from query.promql.value import to_api_json
from store.reads import ClickHouseQuerier

# Prometheus refuses range queries with more points per series than this.
MAX_POINTS_PER_SERIES = 11_000
BUILD_INFO = {
    "version": "2.42.0",
    "revision": "infersight",
    "branch": "infersight",
    "buildUser": "infersight",
    "buildDate": "",
    "goVersion": "",
}


async def _params(request: Request) -> list[tuple[str, str]]:
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            pairs += parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
    return pairs


def _one(pairs: list[tuple[str, str]], name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value
    return None


def build_router(engine: Engine, querier: ClickHouseQuerier) -> APIRouter:
    """Routes under ``/api/v1`` answering from ``engine`` (PromQL) and ``querier`` (metadata)."""
    router = APIRouter(prefix="/api/v1")

    def _guard(fn: Any) -> Any:
        async def handler(request: Request) -> Any:
            try:
                return await fn(await _params(request))
            except BadParamError as err:
                return error_response("bad_data", str(err))
            except PromQLError as err:
                return error_response(err.error_type, str(err))

        handler.__name__ = fn.__name__
        return handler

    async def query(p: list[tuple[str, str]]) -> Any:
        text = _one(p, "query")
        if not text:
            raise BadParamError('invalid parameter "query": query must not be empty')
        ts_ms = parse_time_ms(_one(p, "time"), "time", int(time.time() * 1000))
        value = await run_in_threadpool(engine.instant, text, ts_ms)
        return success(to_api_json(value))

    async def query_range(p: list[tuple[str, str]]) -> Any:
        text = _one(p, "query")
        if not text:
            raise BadParamError('invalid parameter "query": query must not be empty')
        start = parse_time_ms(_one(p, "start"), "start", -1)
        end = parse_time_ms(_one(p, "end"), "end", -1)
        if start == -1 or end == -1:
            raise BadParamError('invalid parameter "start"/"end": both are required')
        if end < start:
            raise BadParamError('invalid parameter "end": end timestamp must not be before start time')
        step = parse_step_ms(_one(p, "step"))
        if (end - start) // step > MAX_POINTS_PER_SERIES:
            raise BadParamError(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        value = await run_in_threadpool(engine.range, text, start, end, step)
        return success(to_api_json(value))

    def _range(p: list[tuple[str, str]]) -> tuple[int, int]:
        return parse_time_ms(_one(p, "start"), "start", MIN_TIME_MS), parse_time_ms(
            _one(p, "end"), "end", MAX_TIME_MS
        )

    def _match_sets(p: list[tuple[str, str]]) -> list[list[Any]]:
        return [parse_match(v) for k, v in p if k == "match[]"]

    async def labels(p: list[tuple[str, str]]) -> Any:
        start, end = _range(p)
        names: set[str] = set()
        for matchers in _match_sets(p) or [[]]:
            names.update(await run_in_threadpool(querier.label_names, matchers, start, end))
        return success(sorted(names))

    async def series(p: list[tuple[str, str]]) -> Any:
        sets = _match_sets(p)
        if not sets:
            raise BadParamError("no match[] parameter provided")
        start, end = _range(p)
        found: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for matchers in sets:
            for labels_ in (await run_in_threadpool(querier.find_series, matchers, start, end)).values():
                found[tuple(sorted(labels_.items()))] = labels_
        return success([found[key] for key in sorted(found)])

    for path, fn in (
        ("/query", query),
        ("/query_range", query_range),
        ("/labels", labels),
        ("/series", series),
    ):
        router.add_api_route(path, _guard(fn), methods=["GET", "POST"])

    @router.api_route("/label/{name}/values", methods=["GET"])
    async def label_values(name: str, request: Request) -> Any:
        try:
            p = await _params(request)
            start, end = _range(p)
            values: set[str] = set()
            for matchers in _match_sets(p) or [[]]:
                values.update(await run_in_threadpool(querier.label_values, name, matchers, start, end))
        except BadParamError as err:
            return error_response("bad_data", str(err))
        return success(sorted(values))

    @router.get("/status/buildinfo")
    async def buildinfo() -> Any:
        return success(BUILD_INFO)

    @router.get("/metadata")
    async def metadata() -> Any:
        return success({})

    @router.get("/query_exemplars")
    async def query_exemplars() -> Any:
        return success([])

    @router.get("/status/runtimeinfo")
    async def runtimeinfo() -> JSONResponse:
        return JSONResponse(success({"storageRetention": "15d"}))

    return router
