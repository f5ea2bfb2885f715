"""Prometheus HTTP API v1 over the store: the routes Grafana's Prometheus data source calls.

Every route accepts GET query strings and POST ``application/x-www-form-urlencoded`` bodies (as
Prometheus 2.42 does for all but ``label/<name>/values``, which takes both here too:
Grafana switches to POST for long selectors). Shapes, status codes and ``errorType`` values follow
``web/api/v1/api.go`` at v2.42, checked against the real binary in ``tests/query/api``.

No request can stall the others: every route does its work (parsing a query, evaluating it,
rendering the answer, reading labels) in a worker thread, never on the event loop; the one
exception is a range answer whose every step the range cache keeps, up to a bounded size, which
is only slices of kept text. Queries run in a pool of ``Engine.max_concurrent`` workers
(Prometheus' ``--query.max-concurrency``); waiting for one counts against the query's timeout,
and a query past it stops in its worker (the engine's deadline) while the caller gets
``timeout``. Metadata lookups have a pool of their own, so a burst of heavy queries leaves
``labels`` and ``series`` answering. Parameters are read strictly: invalid UTF-8, too many of
them, or a form body over ``MAX_FORM_BYTES`` is a 400 ``bad_data``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import math
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from loguru import logger
from starlette.types import ASGIApp, Receive, Scope, Send

from query.api.errors import error_response, render_json, success
from query.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    BadParamError,
    bounded_body,
    parse_match,
    parse_step_ms,
    parse_time_ms,
    parse_timeout_s,
)
from query.api.tenancy import current_project
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from query.promql.parse import parse_expr, to_matchers, vector_selectors
from query.promql.result_cache import RangeResultCache
from query.promql.value import Matrix, Value, matrix_data_json, to_api_json
from store.exemplars import ExemplarStore
from store.reads import ClickHouseQuerier

# A range answer whose every step is kept (``RangeResultCache.kept``) is written on the event loop
# up to this size, about 30 µs of slicing and joining text: less than handing it to a worker.
_KEPT_ON_LOOP_BYTES = 256 * 1024
# Prometheus refuses range queries with more points per series than this.
MAX_POINTS_PER_SERIES = 11_000
# A form body larger than this is refused before it is read in full (a query may be 128 KiB).
MAX_FORM_BYTES = 4 * 1024 * 1024
# Parameters up to this size are decoded on the event loop (well under a millisecond).
_DECODE_ON_LOOP_BYTES = 8 * 1024
# Parameters in one request, and match[] selectors (each one a store read).
MAX_PARAMS = 4096
MAX_MATCH_SETS = 1000
# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
SWITCH_INTERVAL_S = 0.001
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
    """Query-string and form parameters, decoded strictly as UTF-8.

    Decoding costs about 70 ms per MiB of percent-escapes: a large body is decoded in a thread,
    so the event loop keeps answering meanwhile.
    """
    pairs = await _decode_off_loop(request.scope.get("query_string", b""), "query string")
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            pairs += await _decode_off_loop(
                await bounded_body(request, MAX_FORM_BYTES, "form body"), "form body"
            )
    return pairs


async def _decode_off_loop(raw: bytes, where: str) -> Params:
    if len(raw) <= _DECODE_ON_LOOP_BYTES:
        return _decode(raw, where)
    return await asyncio.to_thread(_decode, raw, where)


def _decode(raw: bytes, where: str) -> Params:
    """``parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMS)``, at
    a third of its cost: only a field with an escape or a ``+`` is unquoted (a dashboard request's
    query and times are mostly escapes; its other fields none)."""
    try:
        text = raw.decode("utf-8")
        if text.count("&") >= MAX_PARAMS:
            raise BadParamError(f"too many parameters: more than {MAX_PARAMS}")
        pairs = []
        for field in text.split("&"):
            if not field:
                continue
            name, _, value = field.partition("=")
            if "%" in field or "+" in field:
                name = unquote(name.replace("+", " "), errors="strict")
                value = unquote(value.replace("+", " "), errors="strict")
            pairs.append((name, value))
        return pairs
    except UnicodeError:
        raise BadParamError(f"invalid parameter: the {where} is not valid UTF-8") from None


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


def _promql_error(err: PromQLError) -> Response:
    message = str(err)
    if err.error_type == "bad_data" and message.startswith(_QUERY_PARAM_ERRORS):
        message = f'invalid parameter "query": {message}'
    return error_response(err.error_type, message)


def _time_range(pairs: Params) -> tuple[int, int]:
    start = parse_time_ms(_one(pairs, "start"), "start", MIN_TIME_MS)
    end = parse_time_ms(_one(pairs, "end"), "end", MAX_TIME_MS)
    return start, end


def _match_values(pairs: Params) -> list[str]:
    selectors = [v for k, v in pairs if k == "match[]"]
    if len(selectors) > MAX_MATCH_SETS:
        raise BadParamError(f'invalid parameter "match[]": more than {MAX_MATCH_SETS} selectors')
    return selectors


class _Workers:
    """A fixed pool of threads for one kind of work, answering ``timeout`` when a job overstays.

    The pool's size bounds how many jobs run at once; the rest queue, and the time they wait
    counts against their limit. A job is handed the seconds it has left when it starts; one that
    runs past its limit is left to finish (the engine stops itself at its deadline) while its
    caller is answered; its thread stays taken until then, so a stuck job cannot let more in.
    Jobs run in a copy of the caller's context (its project scope).

    With ``lane``, jobs go first to one thread of their own that runs them one after another; a
    job it has not started within ``LANE_WAIT_S`` (the one before it is long) goes to the pool, and
    while the lane's job has run that long, the next ones go to the pool at once.
    Why: a dashboard refresh sends six panel queries at once, and six threads running them side
    by side hand the interpreter to each other at every compiled call and lock, each with its data
    out of the CPU's caches: on two cores that cost 35 % more CPU per refresh and a slower refresh
    than one thread running the same queries in turn (``docs/promql.md``, step 12). A long query
    still never holds up the others for more than the wait.
    """

    def __init__(self, size: int, name: str, lane: bool = False) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(size, 1), thread_name_prefix=name)
        self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-lane") if lane else None
        self._lane_busy_since: float | None = None  # when the lane's job now running started

    def _in_lane(self, work: _Claim) -> None:
        self._lane_busy_since = time.monotonic()
        try:
            work.run()
        finally:
            self._lane_busy_since = None

    async def run(self, job: Callable[[float], Any], limit_s: float) -> Any:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        deadline = time.monotonic() + limit_s

        def started() -> None:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise PromQLError("timeout", "query timed out in query queue")
                outcome = (True, job(left))
            except StopIteration as err:  # a future refuses it: still a failure the caller sees
                outcome = (False, RuntimeError(f"StopIteration: {err}"))
            except BaseException as err:  # handed to the caller, whatever it is
                outcome = (False, err)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown): nobody waits
                loop.call_soon_threadsafe(_settle, answer, *outcome)

        # The caller's context goes along: the tenant scope (``query.api.tenancy``) lives in it.
        # The answer comes back by one call onto the loop, not chained futures: that hop is paid by
        # every request of a refresh.
        work = _Claim(functools.partial(contextvars.copy_context().run, started))
        lane_timer = None
        if self._lane is None:
            self._pool.submit(work.run)
        else:
            # A lane held by one long job already: the pool runs this one without waiting as long.
            busy_since = self._lane_busy_since
            wait = LANE_WAIT_S if busy_since is None else LANE_WAIT_S - (time.monotonic() - busy_since)
            self._lane.submit(self._in_lane, work)
            lane_timer = loop.call_later(max(wait, 0.0), _to_pool, work, self._pool)
        timer = loop.call_later(limit_s + _GRACE_S, _settle, answer, False, _Overstayed())
        try:
            return await answer
        except _Overstayed:
            work.drop()  # one still queued never starts
            raise PromQLError("timeout", "query timed out in expression evaluation") from None
        finally:
            timer.cancel()
            if lane_timer is not None:
                lane_timer.cancel()


# How long a job waits for the lane before the pool runs it instead (``_Workers``).
LANE_WAIT_S = 0.02


class _Claim:
    """A job that two queues may hold: the first to ``run`` it runs it, the other finds it gone;
    one ``drop``ped before either started never runs."""

    __slots__ = ("_fn", "_taken")

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self._taken = threading.Lock()

    def run(self) -> None:
        if self._taken.acquire(blocking=False):
            self._fn()

    def drop(self) -> None:
        self._taken.acquire(blocking=False)

    def started(self) -> bool:
        return self._taken.locked()


def _to_pool(work: _Claim, pool: ThreadPoolExecutor) -> None:
    """The lane has not started ``work`` in time: the pool runs it, unless the lane does first."""
    if not work.started():
        pool.submit(work.run)


class _Overstayed(Exception):
    """The answer of a job that outlived its limit and grace (the caller raises ``timeout``)."""


def _settle(answer: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if not answer.done():
        if ok:
            answer.set_result(value)
        else:
            answer.set_exception(value)


def _answer(value: Value) -> Response:
    """The success answer of a query. A range answer is written by ``matrix_data_json``, which takes
    the points the range cache already holds as text; labels orjson cannot write (text that is
    not valid UTF-8) go the general way, as every other value does."""
    if isinstance(value, Matrix):
        try:
            body = b'{"status":"success","data":' + matrix_data_json(value.series) + b"}"
        except (TypeError, orjson.JSONEncodeError):
            pass
        else:
            return Response(body, media_type="application/json")
    return render_json(success(to_api_json(value)))


def _limit_s(engine: Engine, timeout_s: float | None) -> float:
    return engine.timeout_s if timeout_s is None else min(timeout_s, engine.timeout_s)


def _check_time(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise PromQLError("timeout", "query timed out in query execution")


Handler = Callable[[Params, dict[str, str]], Awaitable[Any]]


class _Routes:
    """The handlers, sharing the engine, the querier, and the worker pools."""

    def __init__(self, engine: Engine, querier: ClickHouseQuerier, exemplars: ExemplarStore | None) -> None:
        self.engine = engine
        self.querier = querier
        self.exemplars = exemplars
        size = getattr(engine, "max_concurrent", 20)
        self.queries = _Workers(size, "promql-query", lane=True)
        self.lookups = _Workers(size, "promql-lookup")
        # Range answers reused by the next refresh, where the store can say when they go stale.
        stamp = getattr(querier, "data_stamp", None)
        marks = getattr(querier, "point_marks", None)
        keep_until = getattr(querier, "keep_until_ms", None)
        self.range_cache = (
            RangeResultCache(stamp, marks, keep_until if callable(keep_until) else lambda _: None)
            if callable(stamp) and marks is not None
            else None
        )

    async def _evaluate(self, evaluate: Callable[[float], Any], timeout_s: float | None) -> Response:
        """Evaluate and render in a query worker; the answer is ready to send."""
        limit_s = _limit_s(self.engine, timeout_s)
        return await self.queries.run(lambda left: _answer(evaluate(left)), limit_s)

    async def _look_up(self, job: Callable[[float], Any]) -> Response:
        """Metadata work (match[] parsing, store reads, sorting) and rendering in a lookup worker."""
        return await self.lookups.run(lambda left: render_json(success(job(left))), self.engine.timeout_s)

    async def query(self, p: Params, _: dict[str, str]) -> Response:
        text = _query_text(p)
        ts_ms = parse_time_ms(_one(p, "time"), "time", int(time.time() * 1000))
        timeout_s = parse_timeout_s(_one(p, "timeout"))
        return await self._evaluate(lambda left: self.engine.instant(text, ts_ms, left), timeout_s)

    async def query_range(self, p: Params, _: dict[str, str]) -> Response:
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
        cache = None if _one(p, "nocache") == "1" else self.range_cache  # VictoriaMetrics' switch
        if cache is None:
            return await self._evaluate(  # and no results shared with other queries either
                lambda left: self.engine.range(text, start, end, step, left, share=False), timeout_s
            )
        scope = current_project()  # the caller's project: part of the cache key
        kept = cache.kept(scope, text, start, end, step, _KEPT_ON_LOOP_BYTES)
        if kept is not None:  # every step kept: slices of kept text, no worker needed
            return _answer(kept)

        def evaluate(left: float) -> Any:
            deadline = time.monotonic() + left
            return cache.range(
                scope,
                text,
                start,
                end,
                step,
                lambda a, b: self.engine.range(text, a, b, step, max(deadline - time.monotonic(), 0.0)),
            )

        return await self._evaluate(evaluate, timeout_s)

    async def format_query(self, p: Params, _: dict[str, str]) -> Response:
        text = _query_text(p)

        def prettify(_: float) -> Response:
            try:
                expr = parse_expr(text, self.engine.limits)
            except PromQLError as err:
                raise BadParamError(f'invalid parameter "query": {err}') from None
            return render_json(success(expr.prettify()))

        return await self.queries.run(prettify, self.engine.timeout_s)

    async def labels(self, p: Params, _: dict[str, str]) -> Response:
        start, end = _time_range(p)
        selectors = _match_values(p)

        def names(left_s: float) -> list[str]:
            deadline = time.monotonic() + left_s
            found: set[str] = set()
            for matchers in [parse_match(v) for v in selectors] or [[]]:
                _check_time(deadline)
                found.update(self.querier.label_names(matchers, start, end))
            return sorted(found)

        return await self._look_up(names)

    async def label_values(self, p: Params, path: dict[str, str]) -> Response:
        name = path["name"]
        if not _LABEL_NAME.match(name):
            raise BadParamError(f'invalid label name: "{name}"')
        start, end = _time_range(p)
        selectors = _match_values(p)

        def values(left_s: float) -> list[str]:
            deadline = time.monotonic() + left_s
            found: set[str] = set()
            for matchers in [parse_match(v) for v in selectors] or [[]]:
                _check_time(deadline)
                found.update(self.querier.label_values(name, matchers, start, end))
            return sorted(found)

        return await self._look_up(values)

    async def series(self, p: Params, _: dict[str, str]) -> Response:
        selectors = _match_values(p)
        if not selectors:
            raise BadParamError("no match[] parameter provided")
        start, end = _time_range(p)

        def find(left_s: float) -> list[dict[str, str]]:
            deadline = time.monotonic() + left_s
            found: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
            for matchers in [parse_match(v) for v in selectors]:
                _check_time(deadline)
                for labels in self.querier.find_series(matchers, start, end).values():
                    found[tuple(sorted(labels.items()))] = labels
            return [found[key] for key in sorted(found)]

        return await self._look_up(find)

    async def query_exemplars(self, p: Params, _: dict[str, str]) -> Response:
        """The exemplars of the series the query's selectors match, as Prometheus' ``queryExemplars``.

        Each series (the caller's project scope applies: ``find_series``) with its exemplars in
        [start, end], oldest first; a query without selectors (``1 + 1``) is answered 204 without a
        body, as Prometheus does; one whose selectors match nothing ``[]``.
        """
        text = _one(p, "query") or ""
        start, end = _time_range(p)
        if end < start:
            raise BadParamError("end timestamp must not be before start timestamp")

        def find(left_s: float) -> Response:
            deadline = time.monotonic() + left_s
            try:
                expr = parse_expr(text, self.engine.limits)
            except PromQLError as err:
                raise BadParamError(str(err)) from None
            selectors = vector_selectors(expr)
            if not selectors:
                return Response(status_code=204)
            return render_json(success(self._exemplars(selectors, start, end, deadline)))

        return await self.lookups.run(find, self.engine.timeout_s)

    def _exemplars(self, selectors: list[Any], start: int, end: int, deadline: float) -> list[Any]:
        """``query_exemplars``' data: the series the selectors match, each with its exemplars."""
        if self.exemplars is None:
            return []
        series: dict[int, dict[str, str]] = {}
        for selector in selectors:
            _check_time(deadline)
            series.update(self.querier.find_series(to_matchers(selector), start, end))
        if not series:
            return []
        _check_time(deadline)
        found: dict[int, list[dict[str, Any]]] = {}
        for e in self.exemplars.read(list(series), start, end):
            found.setdefault(e.fingerprint, []).append(
                {"labels": e.labels, "value": _format_value(e.value), "timestamp": e.ts_ms / 1000}
            )
        answer = [{"seriesLabels": series[fp], "exemplars": items} for fp, items in found.items()]
        return sorted(answer, key=lambda item: sorted(item["seriesLabels"].items()))

    async def buildinfo(self, p: Params, _: dict[str, str]) -> Any:
        return success(BUILD_INFO)

    async def runtimeinfo(self, p: Params, _: dict[str, str]) -> Any:
        return success({"storageRetention": "15d"})


def _format_value(value: float) -> str:
    """A float as Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` (how Prometheus writes exemplar values)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def _guard(fn: Handler) -> Callable[[Request], Awaitable[Any]]:
    """Parameters from query string and form; failures as Prometheus' error JSON and status.

    Anything else that escapes a handler is a bug: logged, and still answered in the API's shape.
    """

    async def handler(request: Request) -> Any:
        try:
            return await fn(await _params(request), dict(request.path_params))
        except BadParamError as err:
            return error_response("bad_data", str(err))
        except PromQLError as err:
            return _promql_error(err)
        except RecursionError:
            return error_response("bad_data", "query is too deeply nested")
        except Exception as exc:
            logger.opt(exception=exc).error("{} failed", request.url.path)
            return error_response("internal", f"{type(exc).__name__}: {exc}")

    handler.__name__ = fn.__name__
    return handler


class DirectRoutes:
    """Pure ASGI middleware: GET and POST requests to the read routes go straight to their handlers.

    Why: a dashboard refresh is dozens of small requests, and around each FastAPI's routing,
    dependency solving and exception layers cost about as much server time as evaluating the
    query (``docs/promql.md``). The handlers are the very ones the router serves (``_guard``: the
    same parameters, errors and logging); the router still holds the routes for the OpenAPI
    schema and answers every other method. Placed inside the auth middleware, like ``ExactRoutes``.
    """

    def __init__(self, app: ASGIApp, handlers: dict[str, Callable[[Request], Awaitable[Any]]]) -> None:
        self.app = app
        self._handlers = handlers
        self._label_values = handlers[_PREFIX + _LABEL_VALUES_ROUTE]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        handler = self._handlers.get(path)
        if handler is None and path.startswith(_LABEL_PREFIX) and path.endswith(_VALUES_SUFFIX):
            name = path[len(_LABEL_PREFIX) : -len(_VALUES_SUFFIX)]
            if name and "/" not in name:
                scope["path_params"] = {"name": name}
                handler = self._label_values
        if handler is None:
            await self.app(scope, receive, send)
            return
        response = await handler(Request(scope, receive))
        await response(scope, receive, send)


_PREFIX = "/api/v1"
_LABEL_VALUES_ROUTE = "/label/{name}/values"
_LABEL_PREFIX = f"{_PREFIX}/label/"
_VALUES_SUFFIX = "/values"


def build_router(
    engine: Engine, querier: ClickHouseQuerier, exemplars: ExemplarStore | None = None
) -> APIRouter:
    """Routes under ``/api/v1`` answering from ``engine`` (PromQL), ``querier`` (series, labels) and
    ``exemplars`` (none: ``query_exemplars`` finds none, as a Prometheus without exemplar storage).
    ``router.direct``: the handlers ``DirectRoutes`` serves, by full path.

    Also shortens the interpreter's thread switch interval to ``SWITCH_INTERVAL_S`` (process-wide):
    a short request needs the GIL a handful of times (event loop, worker, after each store read),
    and at Python's default 5 ms each of those can wait a whole slice of a running heavy query.
    """
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    router = APIRouter(prefix=_PREFIX)
    routes = _Routes(engine, querier, exemplars)
    direct: dict[str, Callable[[Request], Awaitable[Any]]] = {}
    for path, fn in (
        ("/query", routes.query),
        ("/query_range", routes.query_range),
        ("/format_query", routes.format_query),
        ("/labels", routes.labels),
        (_LABEL_VALUES_ROUTE, routes.label_values),
        ("/series", routes.series),
        ("/query_exemplars", routes.query_exemplars),
        ("/status/buildinfo", routes.buildinfo),
        ("/status/runtimeinfo", routes.runtimeinfo),
    ):
        handler = _guard(fn)
        router.add_api_route(path, handler, methods=["GET", "POST"])
        if not path.startswith("/status/"):  # those answer dicts, which FastAPI renders
            direct[_PREFIX + path] = handler
    router.direct = direct  # type: ignore[attr-defined]
    return router
