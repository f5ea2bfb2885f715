"""HTTP series as vLLM exposes them through prometheus-fastapi-instrumentator's defaults.

vLLM instruments its API server with ``Instrumentator(excluded_handlers=[...]).instrument(app)``,
whose ``metrics.default()`` gives ``http_requests_total{method,status,handler}`` (status grouped
as "2xx"), ``http_request_duration_seconds{method,handler}`` (buckets 0.1, 0.5, 1),
``http_request_duration_highr_seconds`` (no labels) and the request/response size summaries.
``handler`` is the route template; unmatched paths are grouped as "none". This is a small ASGI
middleware with the same output, so the simulator does not need the instrumentator package.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, Summary
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HIGHR_BUCKETS_S = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
    5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
LOWR_BUCKETS_S = (0.1, 0.5, 1.0)
# vLLM's excluded_handlers, plus the simulator's own ground-truth endpoints
EXCLUDED_HANDLERS = frozenset(
    {"/metrics", "/health", "/load", "/ping", "/version", "/server_info", "/sim/served", "/sim/reset"}
)


class HttpMetricsMiddleware:
    """ASGI middleware counting every request by method, grouped status and route template."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: CollectorRegistry,
        routes: Callable[[], Sequence[BaseRoute]],
    ) -> None:
        self.app = app
        self._routes = routes
        self.total = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ("method", "status", "handler"),
            registry=registry,
        )
        self.in_size = Summary(
            "http_request_size_bytes",
            "Content length of incoming requests by handler. Only value of header is respected. "
            "Otherwise ignored. No percentile calculated. ",
            ("handler",),
            registry=registry,
        )
        self.out_size = Summary(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler. Only value of header is respected. "
            "Otherwise ignored. No percentile calculated. ",
            ("handler",),
            registry=registry,
        )
        self.latency_highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. Made for more accurate percentile "
            "calculations. ",
            buckets=HIGHR_BUCKETS_S,
            registry=registry,
        )
        self.latency_lowr = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation by handler "
            "is important. ",
            ("method", "handler"),
            buckets=LOWR_BUCKETS_S,
            registry=registry,
        )

    def _handler(self, scope: Scope) -> str:
        for route in self._routes():
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "none"))
        return "none"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = self._handler(scope)
        if handler in EXCLUDED_HANDLERS:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        response_length = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_length
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for key, value in message.get("headers", []):
                    if key.lower() == b"content-length":
                        response_length = int(value)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - start
            method = scope["method"]
            request_length = 0
            for key, value in scope.get("headers", []):
                if key.lower() == b"content-length":
                    request_length = int(value)
            self.total.labels(method, f"{str(status)[0]}xx", handler).inc()
            self.in_size.labels(handler).observe(request_length)
            self.out_size.labels(handler).observe(response_length)
            self.latency_highr.observe(duration)
            self.latency_lowr.labels(method, handler).observe(duration)
