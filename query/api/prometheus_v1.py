"""Prometheus HTTP API v1 over the store: the routes Grafana's Prometheus data source calls.

Every route accepts GET query strings and POST ``application/x-www-form-urlencoded`` bodies (as
Prometheus 2.42 does for all but ``label/<name>/values`` and ``metadata``, which take both here too:
Grafana switches to POST for long selectors). Shapes, status codes and ``errorType`` values follow
``web/api/v1/api.go`` at v2.42, checked against the real binary in ``tests/query/api``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from query.api import metadata as metadata_
from query.api.errors import error_response, success
from query.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    BadParamError,
    parse_match,
    parse_step_ms,
    parse_time_ms,
    parse_timeout_s,
)
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from query.promql.parse import parse_expr
from query.promql.value import to_api_json
from store.reads import ClickHouseQuerier

# Prometheus refuses range queries with more points per series than this.
MAX_POINTS_PER_SERIES = 11_000
# The HTTP answer waits this much beyond the engine's own timeout before giving up on the worker.
_GRACE_S = 2.0
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Engine errors Prometheus raises while building the query, which its API words as a bad parameter.
_QUERY_PARAM_ERRORS = ("parse error", "invalid expression type")
BUILD_INFO = {
    "version": "2.42.0",
    "revision": "infersight",
    "branch": "infersight",
    "buildUser": "infersight",
    "buildDate": "",
    "goVersion": "",
}
Params = list[tuple[str, str]]


async def _params(request: Request) -> Params:
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            pairs += parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
    return pairs


def _one(pairs: Params, name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value
    return None


def _query_text(pairs: Params) -> str:
    text = _one(pairs, "query")
    if not text:
        raise BadParamError('invalid parameter "query": 1:1: parse error: no expression found in input')
    return text


def _promql_error(err: PromQLError) -> JSONResponse:
    message = str(err)
    if err.error_type == "bad_data" and message.startswith(_QUERY_PARAM_ERRORS):
        message = f'invalid parameter "query": {message}'
    return error_response(err.error_type, message)


def _time_range(pairs: Params) -> tuple[int, int]:
    start = parse_time_ms(_one(pairs, "start"), "start", MIN_TIME_MS)
    end = parse_time_ms(_one(pairs, "end"), "end", MAX_TIME_MS)
    return start, end


def _match_sets(pairs: Params) -> list[list[Any]]:
    return [parse_match(v) for k, v in pairs if k == "match[]"]


Handler = Callable[[Params, dict[str, str]], Awaitable[Any]]


class _Routes:
    """The handlers, sharing the engine, the querier and the per-query time limit."""

    def __init__(self, engine: Engine, querier: ClickHouseQuerier) -> None:
        self.engine = engine
        self.querier = querier

    async def _evaluate(self, fn: Callable[..., Any], *args: Any, timeout_s: float | None) -> Any:
        """Run the engine in a worker; answer ``timeout`` even if a store call does not return."""
        limit = self.engine.timeout_s if timeout_s is None else min(timeout_s, self.engine.timeout_s)
        try:
            return await asyncio.wait_for(run_in_threadpool(fn, *args, timeout_s), limit + _GRACE_S)
        except TimeoutError:
            raise PromQLError("timeout", "query timed out in expression evaluation") from None

    async def query(self, p: Params, _: dict[str, str]) -> Any:
        text = _query_text(p)
        ts_ms = parse_time_ms(_one(p, "time"), "time", int(time.time() * 1000))
        timeout_s = parse_timeout_s(_one(p, "timeout"))
        value = await self._evaluate(self.engine.instant, text, ts_ms, timeout_s=timeout_s)
        return success(to_api_json(value))

    async def query_range(self, p: Params, _: dict[str, str]) -> Any:
        text = _query_text(p)
        start = parse_time_ms(_one(p, "start"), "start", None)
        end = parse_time_ms(_one(p, "end"), "end", None)
        if end < start:
            raise BadParamError('invalid parameter "end": end timestamp must not be before start time')
        step = parse_step_ms(_one(p, "step"))
        if (end - start) // step > MAX_POINTS_PER_SERIES:
            raise BadParamError(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        timeout_s = parse_timeout_s(_one(p, "timeout"))
        value = await self._evaluate(self.engine.range, text, start, end, step, timeout_s=timeout_s)
        return success(to_api_json(value))

    async def format_query(self, p: Params, _: dict[str, str]) -> Any:
        text = _query_text(p)
        try:
            expr = parse_expr(text)
        except PromQLError as err:
            raise BadParamError(f'invalid parameter "query": {err}') from None
        return success(expr.prettify())

    async def labels(self, p: Params, _: dict[str, str]) -> Any:
        start, end = _time_range(p)
        names: set[str] = set()
        for matchers in _match_sets(p) or [[]]:
            names.update(await run_in_threadpool(self.querier.label_names, matchers, start, end))
        return success(sorted(names))

    async def label_values(self, p: Params, path: dict[str, str]) -> Any:
        name = path["name"]
        if not _LABEL_NAME.match(name):
            raise BadParamError(f'invalid label name: "{name}"')
        start, end = _time_range(p)
        values: set[str] = set()
        for matchers in _match_sets(p) or [[]]:
            values.update(await run_in_threadpool(self.querier.label_values, name, matchers, start, end))
        return success(sorted(values))

    async def series(self, p: Params, _: dict[str, str]) -> Any:
        sets = _match_sets(p)
        if not sets:
            raise BadParamError("no match[] parameter provided")
        start, end = _time_range(p)
        found: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for matchers in sets:
            for labels in (await run_in_threadpool(self.querier.find_series, matchers, start, end)).values():
                found[tuple(sorted(labels.items()))] = labels
        return success([found[key] for key in sorted(found)])

    async def metadata(self, p: Params, _: dict[str, str]) -> Any:
        limit_text = _one(p, "limit")
        try:
            limit = int(limit_text) if limit_text else -1
        except ValueError:
            raise BadParamError("limit must be a number") from None
        names = await run_in_threadpool(self.querier.label_values, "__name__", [], MIN_TIME_MS, MAX_TIME_MS)
        return success(metadata_.select(metadata_.from_names(names), _one(p, "metric"), limit))

    async def query_exemplars(self, p: Params, _: dict[str, str]) -> Any:
        """Exemplars are not stored: a valid query gets an empty list, as a Prometheus without any."""
        try:
            parse_expr(_one(p, "query") or "")
        except PromQLError as err:
            raise BadParamError(str(err)) from None
        _time_range(p)
        return success([])

    async def buildinfo(self, p: Params, _: dict[str, str]) -> Any:
        return success(BUILD_INFO)

    async def runtimeinfo(self, p: Params, _: dict[str, str]) -> Any:
        return success({"storageRetention": "15d"})


def _guard(fn: Handler) -> Callable[[Request], Awaitable[Any]]:
    """Parameters from query string and form; failures as Prometheus' error JSON and status."""

    async def handler(request: Request) -> Any:
        try:
            return await fn(await _params(request), dict(request.path_params))
        except BadParamError as err:
            return error_response("bad_data", str(err))
        except PromQLError as err:
            return _promql_error(err)

    handler.__name__ = fn.__name__
    return handler


def build_router(engine: Engine, querier: ClickHouseQuerier) -> APIRouter:
    """Routes under ``/api/v1`` answering from ``engine`` (PromQL) and ``querier`` (metadata)."""
    router = APIRouter(prefix="/api/v1")
    routes = _Routes(engine, querier)
    for path, fn in (
        ("/query", routes.query),
        ("/query_range", routes.query_range),
        ("/format_query", routes.format_query),
        ("/labels", routes.labels),
        ("/label/{name}/values", routes.label_values),
        ("/series", routes.series),
        ("/metadata", routes.metadata),
        ("/query_exemplars", routes.query_exemplars),
        ("/status/buildinfo", routes.buildinfo),
        ("/status/runtimeinfo", routes.runtimeinfo),
    ):
        router.add_api_route(path, _guard(fn), methods=["GET", "POST"])
    return router
