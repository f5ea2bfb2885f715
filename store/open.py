"""Opens a store from its URL-style setting.

- ``chdb:///path/to/data`` or ``chdb://./rel``: embedded chDB (the default); ``?insert_connections=N``
  cuts an insert of at least twice 100k rows into N ranges written at once (``store.parallel_inserts``);
- ``clickhouse://[user:password@]host:9000/database[?compression=lz4&cluster=NAME]``: a server, or with
  ``cluster`` a cluster (Replicated local tables + Distributed tables, see ``store.cluster``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from store.backend import Backend
from store.cluster import render_cluster_schema
from store.features import Features
from store.limits import Limits
from store.reads import ClickHouseQuerier
from store.rollups import LateMarker
from store.schema import render_schema
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


def open_store(dsn: str, database: str = "infersight", limits: Limits | None = None) -> Store:
    """Connect, create the schema if missing (with the server's features), and return the store.

    ``limits``: what ingest accepts (``store.limits``; defaults as documented there).
    """
    backend = open_backend(dsn, database)
    features = Features.probe(backend)
    cluster = getattr(backend, "cluster", None)
    if cluster:
        statements = render_cluster_schema(backend.database, cluster, features)
    else:
        statements = render_schema(backend.database, features)
    for statement in statements:
        backend.execute(statement)
    # Batches reaching back past the rollup job's horizon are marked for it (store.rollups).
    writer = SampleWriter(backend, limits=limits, on_stored=LateMarker(backend))
    return Store(backend, writer, ClickHouseQuerier(backend), features)
