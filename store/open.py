"""Opens a store from its URL-style setting: ``chdb:///path/to/data`` (default) or ``chdb://./rel``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from store.backend import Backend
from store.chdb import ChdbBackend
from store.reads import ClickHouseQuerier
from store.schema import render_schema
from store.writes import SampleWriter


@dataclass
class Store:
    """A backend with its schema applied, and the writer and querier over it."""

    backend: Backend
    writer: SampleWriter
    querier: ClickHouseQuerier

    def close(self) -> None:
        self.backend.close()


def open_store(dsn: str, database: str = "infersight") -> Store:
    """Connect, create the schema if missing, and return the store."""
    url = urlparse(dsn)
    if url.scheme != "chdb":
        raise ValueError(f"store.dsn: unsupported scheme {url.scheme!r} in {dsn!r} (supported: chdb://PATH)")
    path = (url.netloc + url.path) or "./data"
    backend = ChdbBackend(path, database)
    for statement in render_schema(database):
        backend.execute(statement)
    return Store(backend, SampleWriter(backend), ClickHouseQuerier(backend))
