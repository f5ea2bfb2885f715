"""Differential test through the real path: SampleWriter → chDB → HTTP API, against Prometheus 2.42.

The same generated series (``differential_data``) go into a chDB store and into a real Prometheus;
every generated query (``differential_queries``, ≥ 300, the guide's statements among them) is asked
of both HTTP APIs as instant queries at a few times and as range queries with odd starts and steps.
Label sets, timestamps and values (1e-9 relative) and error/no-error (with errorType) must agree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from model.labels import to_labels
from model.series import Sample
from query.api.app import create_app
from store.open import open_store
from tests.query.api.differential_data import HEAD_S, HISTORY_S, T0_S, head, history
from tests.query.api.differential_queries import generate
from tests.query.prometheus_ref import (
    assert_same,
    binaries_missing,
    http_get,
    remote_write,
    running_prometheus,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        binaries_missing() and not os.environ.get("CI"),  # CI installs them: there, fail instead
        reason="needs prometheus and promtool 2.42 on PATH (apt-get install prometheus on Debian 12)",
    ),
]

QUERIES = generate()
END_S = T0_S + HISTORY_S + HEAD_S
INSTANT_TIMES_S = (T0_S + 1800.123, T0_S + HISTORY_S + 420, END_S + 200)
RANGES_S = ((T0_S + 123.456, END_S, 67), (T0_S - 600, T0_S + 1500, 30))


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), history()) as url:
        remote_write(url, head())
        yield url


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One chDB store for the module (as ``chdb_store``, but written once for all queries)."""
    store = open_store(f"chdb://{tmp_path_factory.mktemp('chdb') / 'data'}")
    batch = [Sample(to_labels(labels), round(t * 1000), v) for labels, points in history() for t, v in points]
    batch += [Sample(to_labels(labels), t, v) for labels, points in head() for t, v in points]
    for i in range(0, len(batch), 50_000):
        store.writer.write(batch[i : i + 50_000])
    try:
        yield TestClient(create_app(store))
    finally:
        store.close()


def _ours(client: TestClient, path: str, **params: str) -> dict:
    return client.get(f"/api/v1/{path}", params=params).json()


def test_query_count() -> None:
    assert len(QUERIES) >= 300


@pytest.mark.parametrize("query", QUERIES)
def test_instant(prometheus_url: str, client: TestClient, query: str) -> None:
    for t in INSTANT_TIMES_S:
        params = {"query": query, "time": str(t)}
        theirs = http_get(prometheus_url, "query", **params)
        assert_same(theirs, _ours(client, "query", **params), ordered=query.startswith("sort"))


@pytest.mark.parametrize("query", QUERIES)
def test_range(prometheus_url: str, client: TestClient, query: str) -> None:
    for start, end, step in RANGES_S:
        params = {"query": query, "start": str(start), "end": str(end), "step": str(step)}
        theirs = http_get(prometheus_url, "query_range", **params)
        assert_same(theirs, _ours(client, "query_range", **params))
