"""The store suite runs against both backends: embedded chDB and a real ClickHouse 18.16 server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.open import Store, open_store
from tests.store.clickhouse_server import ClickHouseServer, require_binary

_databases = itertools.count()


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """One ClickHouse 18.16 server for the session, on free loopback ports, stopped by PID."""
    require_binary()
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse")).start()
    yield server
    server.stop()


@pytest.fixture(params=["chdb", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store on each backend: a chDB folder, or a new database on the shared server."""
    if request.param == "chdb":
        opened = open_store(f"chdb://{tmp_path / 'data'}")
        yield opened
        opened.close()
        return
    server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
    database = f"t{next(_databases)}"
    opened = open_store(server.dsn(database))
    yield opened
    opened.backend.execute(f"DROP DATABASE IF EXISTS {database}")
    opened.close()
