"""The central HTTP server: Prometheus API v1 for Grafana and rules, plus sidecar ingest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import PlainTextResponse
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from console.serve import mount_console
from exporters.ingest_log import IngestLog
from query.api.admin import build_admin_router
from query.api.audit import build_audit_router
from query.api.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from query.api.events import build_events_router
from query.api.exemplars import build_exemplar_router
from query.api.failed_auth import MAX_FAILURES, WINDOW_S, FailedAuthLimiter
from query.api.ingest import build_ingest_router
from query.api.metadata import build_metadata_router
from query.api.otlp_names import IDENTITY_ATTRIBUTES
from query.api.otlp_receiver import OtlpEndpoint, OtlpMetricsReceiver, OtlpTracesReceiver
from query.api.otlp_request import METRICS_PATHS as OTLP_METRICS_PATHS
from query.api.otlp_request import TRACES_PATHS as OTLP_TRACES_PATHS
from query.api.prometheus_v1 import DirectRoutes, build_router
from query.api.remote_write import PATH as REMOTE_WRITE_PATH
from query.api.remote_write import RemoteWriteEndpoint
from query.api.server_counts import ApiCounters
from query.api.sketches import build_sketch_router
from query.api.tenancy import AuthCounts, AuthMiddleware, TenantQuerier
from query.events.hub import EventHub
from query.promql.engine import Engine
from query.sketch_series import SketchSeriesQuerier
from store.api_keys import KeyStore
from store.audit import AuditLog
from store.events import EventLog
from store.exemplars import ExemplarStore
from store.metadata import MetadataStore
from store.open import Store
from store.sketches import SketchWriter


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """With ``enabled``, every /api call needs a key; ``admin_key`` is the bootstrap secret. A client
    address failing ``max_failures`` times in ``failure_window_s`` is answered 429 until it ends."""

    enabled: bool = False
    admin_key: str = ""
    max_failures: int = MAX_FAILURES
    failure_window_s: float = WINDOW_S


class ExactRoutes:
    """Pure ASGI middleware: a request to one of ``routes``' paths goes straight to that ASGI app,
    the rest to the router. For endpoints that senders hit hundreds of times a second with small
    requests (remote write), where FastAPI's routing and request handling would cost as much as the
    work itself. They are not in the OpenAPI schema (docs/store.md documents remote write)."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        await (target or self.app)(scope, receive, send)


class FrozenRoutes:
    """Pure ASGI middleware that, on the first request, fixes FastAPI's version of the route tree.

    Why: FastAPI recomputes that version on every request, walking every route of every included
    router, so that routes added while serving are found; measured on a cached dashboard refresh
    it was a quarter of the server's time. Here every route is added before the app serves (a
    route added later would not be found: ``create_app`` takes them all through ``routers``).
    Routers without that method (other FastAPI versions) are left as they are.
    """

    def __init__(self, app: ASGIApp, router: Any) -> None:
        self.app = app
        self._router = router
        self._frozen = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._frozen:
            self._frozen = True
            _freeze(self._router, set())
        await self.app(scope, receive, send)


def _freeze(router: Any, seen: set[int]) -> None:
    versions = getattr(router, "_get_routes_version", None)
    if versions is None or id(router) in seen:
        return
    seen.add(id(router))
    for route in getattr(router, "routes", ()):
        inner = getattr(route, "original_router", None)
        if inner is not None:
            _freeze(inner, seen)
    version = versions()
    router._get_routes_version = lambda seen=None: version


class InfersightAPI(FastAPI):
    """FastAPI whose added middlewares run ahead of FastAPI itself.

    Why: a dashboard refresh is dozens of small requests, and FastAPI's own layers (an error
    catcher, a telemetry check that reads the environment on every request, a body limit that
    ours already enforces) cost about as much server time per request as answering a cached
    panel. Ours (body limit, auth, the store gate, the direct routes) come first, in the order
    added, as Starlette orders them (the last added outermost); FastAPI and its stack follow for
    every request the direct routes do not answer. An exception escaping one of ours is answered
    500 and logged by uvicorn, as FastAPI's catcher would have; FastAPI's OpenTelemetry spans (when
    a tracer provider is configured) cover the routes it serves.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.front: list[Middleware] = []
        self._front_app: ASGIApp | None = None

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        if self._front_app is not None:
            raise RuntimeError("Cannot add middleware after an application has started")
        self.front.insert(0, Middleware(middleware_class, *args, **kwargs))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._front_app
        if app is None:
            app = self._fastapi
            for cls, args, kwargs in reversed(self.front):
                app = cls(app, *args, **kwargs)
            self._front_app = app
        await app(scope, receive, send)

    async def _fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def build_querier(store: Store) -> TenantQuerier:
    """The read path every query takes: the caller's project scope over the store, plus the
    sketches as the virtual ``infersight_sketch_quantile`` series."""
    return TenantQuerier(SketchSeriesQuerier(store.querier, store.backend))


def create_app(
    store: Store,
    engine: Engine | None = None,
    hub: EventHub | None = None,
    auth: AuthSettings | None = None,
    audit: AuditLog | None = None,
    routers: Sequence[APIRouter] = (),
    ingest_log: IngestLog | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    otlp_identity: Sequence[tuple[str, str]] = IDENTITY_ATTRIBUTES,
) -> InfersightAPI:
    """``uvicorn.run(create_app(open_store("chdb://./data")))``.

    Pass ``hub`` and ``audit`` to share them with the rest of the process: the audit trail must
    have one writer, or two chain heads would fork it. ``routers`` adds more routes (rules).
    ``ingest_log``: ingest and remote write answer once a batch is in it (``exporters/ingest_log.py``),
    not once it is stored; its owner starts and stops it. ``otlp_identity``: the OTLP receivers'
    resource attribute → identity label table (``otlp_names``).
    """
    app = InfersightAPI(title="infersight", version="0.1.0")
    # Every read goes through the tenant scope: a no-op unless the caller's key is confined.
    querier = build_querier(store)
    engine = engine or Engine(querier)
    audit = audit or AuditLog(store.backend)
    keys = KeyStore(store.backend)
    # Ahead of the Prometheus routes: it answers /api/v1/metadata from the targets' TYPE/HELP/UNIT.
    app.include_router(build_metadata_router(MetadataStore(store.backend), querier))
    prometheus = build_router(engine, querier, ExemplarStore(store.backend))
    app.include_router(prometheus)
    ingest = build_ingest_router(store.writer, ingest_log)
    app.include_router(ingest)
    app.include_router(build_audit_router(audit))
    hub = hub or EventHub(EventLog(store.backend), store.writer)
    app.include_router(build_admin_router(keys, audit, hub.log))
    app.include_router(build_events_router(hub))
    app.include_router(build_sketch_router(store.backend, store.writer.guard))
    app.include_router(build_exemplar_router(store.backend, store.writer.guard))

    # Plain text, as Prometheus answers them (probes and scripts compare the body).
    @app.get("/-/healthy", response_class=PlainTextResponse)
    async def healthy() -> str:
        return "infersight is Healthy.\n"

    @app.get("/-/ready", response_class=PlainTextResponse)
    async def ready() -> str:
        return "infersight is Ready.\n"

    for router in routers:
        app.include_router(router)
    # Inside the auth middleware (added last, so outermost): the caller's key still applies.
    receiver = RemoteWriteEndpoint(store.writer, log=ingest_log, metadata=MetadataStore(store.backend))
    otlp_metrics = OtlpMetricsReceiver(
        store.writer,
        SketchWriter(store.backend),
        ingest_log,
        identity=otlp_identity,
        exemplar_store=ExemplarStore(store.backend),
    )
    app.state.otlp_metrics = otlp_metrics
    exact = {REMOTE_WRITE_PATH: receiver}
    exact.update(dict.fromkeys(OTLP_METRICS_PATHS, OtlpEndpoint(otlp_metrics)))
    app.state.otlp_traces = OtlpTracesReceiver(otlp_metrics)
    exact.update(dict.fromkeys(OTLP_TRACES_PATHS, OtlpEndpoint(app.state.otlp_traces)))
    app.add_middleware(FrozenRoutes, router=app.router)
    app.add_middleware(DirectRoutes, handlers=prometheus.direct)  # type: ignore[attr-defined]
    app.add_middleware(ExactRoutes, routes=exact)
    auth = auth or AuthSettings()
    mount_console(app, auth_required=auth.enabled)  # the browser console at /, over these same APIs
    # What the write routes and the auth refused, for the server's own series (server_counts).
    doors = {
        "remote_write": receiver.admission,
        "ingest": ingest.admission,
        "otlp_metrics": otlp_metrics.admission,
    }  # type: ignore[attr-defined]
    app.state.counters = ApiCounters(doors)
    if auth.enabled:
        limiter = FailedAuthLimiter(auth.max_failures, auth.failure_window_s)
        outcomes = AuthCounts()
        app.state.counters = ApiCounters(doors, (outcomes, limiter, keys))
        app.add_middleware(
            AuthMiddleware, keys=keys, admin_secret=auth.admin_key or None, limiter=limiter, counts=outcomes
        )
    # Outermost: a body over the ceiling is refused before anything reads it.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app
