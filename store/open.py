"""Opens a store from its URL-style setting.

- ``chdb:///path/to/data`` or ``chdb://./rel``: embedded chDB (the default); ``?insert_connections=N``
  cuts an insert of at least twice 100k rows into N ranges written at once (``store.parallel_inserts``);
- ``clickhouse://[user:password@]host:9000/database[?compression=lz4&cluster=NAME]``: a server, or with
  ``cluster`` a cluster (Replicated local tables + Distributed tables, see ``store.cluster``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
from loguru import logger

from store.backend import Backend, StoreUnavailableError
from store.cluster import render_cluster_schema
from store.features import Features
from store.limits import Limits
from store.reads import ClickHouseQuerier
from store.recent_points import RecentPoints
from store.rollups import LateMarker
from store.schema import render_schema
from store.schema_upgrade import add_missing_columns
from store.writes import SampleWriter

SCHEMES = ("chdb", "clickhouse")


@dataclass
class Store:
    """A backend with its schema applied, and the writer and querier over it."""

    backend: Backend
    writer: SampleWriter
    querier: ClickHouseQuerier
    features: Features | None = None

    def close(self) -> None:
        self.backend.close()


def chdb_path(dsn: str) -> str:
    """The data folder of a ``chdb://`` DSN, options left out."""
    url = urlparse(dsn)
    return (url.netloc + url.path) or "./data"


def open_backend(dsn: str, database: str = "infersight") -> Backend:
    """The backend a DSN names, connected but without schema."""
    url = urlparse(dsn)
    if url.scheme == "chdb":
        from store.chdb import ChdbBackend  # imported here: chDB loads a 500 MB library

        options = {key: values[-1] for key, values in parse_qs(url.query).items()}
        connections = int(options.get("insert_connections", 1))
        return ChdbBackend(chdb_path(dsn), database, insert_connections=connections)
    if url.scheme == "clickhouse":
        from store.native import NativeBackend

        return NativeBackend(dsn, database if url.path.strip("/") == "" else None)
    raise ValueError(
        f"store.dsn: unsupported scheme {url.scheme!r} in {dsn!r} "
        "(supported: chdb://PATH, clickhouse://HOST:PORT/DATABASE)"
    )


def prepare(backend: Backend) -> Features:
    """Probe the server's features, create the schema if missing and add the columns a table made
    by an older release lacks (``store.schema_upgrade``); idempotent."""
    features = Features.probe(backend)
    cluster = getattr(backend, "cluster", None)
    if cluster:
        statements = render_cluster_schema(backend.database, cluster, features)
    else:
        statements = render_schema(backend.database, features)
    for statement in statements:
        backend.execute(statement)
    add_missing_columns(backend, features)
    return features


class PendingBackend:
    """A server backend that was unreachable at start: every call first tries to reach it and
    apply the schema (at most every ``retry_s``), and raises ``StoreUnavailableError`` until that
    worked. So the server can start without its store; writes wait in its ingest log (a retryable
    error) instead of failing against tables that do not exist yet, and reads answer 503.
    """

    def __init__(
        self, backend: Backend, retry_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._backend = backend
        self.database = backend.database
        self.cluster = getattr(backend, "cluster", None)
        self.features: Features | None = None
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._ready = False
        self._next_try = 0.0
        self._error = "not reached yet"

    @property
    def reached(self) -> bool:
        """Whether the store has answered (no attempt made: safe on an event loop)."""
        return self._ready

    def ready(self) -> bool:
        """True once the store answered and has its schema (tries now if a try is due)."""
        if self._ready:
            return True
        with self._lock:
            if self._ready or self._clock() < self._next_try:
                return self._ready
            try:
                self.features = prepare(self._backend)
            except StoreUnavailableError as err:
                self._error = str(err)
                self._next_try = self._clock() + self._retry_s
                return False
            self._ready = True
        logger.info("store reachable again; schema in place")
        return True

    def _backend_when_ready(self) -> Backend:
        if not self.ready():
            raise StoreUnavailableError(f"store not reachable since start-up: {self._error}")
        return self._backend

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._backend_when_ready().execute(sql, params)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        return self._backend_when_ready().query(sql, params)

    def insert(self, table: str, rows: pa.Table) -> None:
        self._backend_when_ready().insert(table, rows)

    def close(self) -> None:
        self._backend.close()


def open_store(
    dsn: str,
    database: str = "infersight",
    limits: Limits | None = None,
    wait: bool = True,
    recent: tuple[float, int] | None = None,
    series_index: bool = True,
) -> Store:
    """Connect, create the schema if missing (with the server's features), and return the store.

    ``limits``: what ingest accepts (``store.limits``; defaults as documented there). ``wait=False``
    (a ClickHouse server only): if the server cannot be reached now, return a store over a
    ``PendingBackend`` that keeps trying, instead of raising ``StoreUnavailableError``.
    A failed open closes what it opened (chDB must not be left open at exit). ``recent``: the
    hours and the number of points a chDB store keeps in memory (``store.recent_points``; 0
    points: none); the defaults there when not given. ``series_index``: keep every series in
    memory (chDB: ``store.series_index``); off for a short-lived process that runs no queries.
    """
    backend = open_backend(dsn, database)
    try:
        features: Features | None = prepare(backend)
    except StoreUnavailableError as err:
        if wait or not dsn.startswith("clickhouse://"):
            backend.close()
            raise
        logger.warning("store not reachable, retrying in the background: {}", err)
        backend, features = PendingBackend(backend), None
    except BaseException:
        backend.close()
        raise
    if recent is not None and hasattr(backend, "recent"):
        hours, max_points = recent
        backend.recent = RecentPoints(round(hours * 3_600_000), max_points) if max_points else None
    recent_points = getattr(backend, "recent", None)
    if not series_index and hasattr(backend, "series_index"):
        backend.series_index = None
    index = getattr(backend, "series_index", None)
    try:
        if recent_points is not None:
            recent_points.load(backend)
        if index is not None:
            index.load(backend)
    except BaseException:
        backend.close()
        raise
    # Batches reaching back past the rollup job's horizon are marked for it (store.rollups).
    writer = SampleWriter(backend, limits=limits, on_stored=LateMarker(backend))
    return Store(backend, writer, ClickHouseQuerier(backend), features)
