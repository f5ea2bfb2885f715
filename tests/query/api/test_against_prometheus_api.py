"""Differential test through the real path: SampleWriter → chDB → HTTP API, against Prometheus 2.42.

The same generated series (``differential_data``) go into a chDB store and into a real Prometheus;
every generated query (``differential_queries``, ≥ 300, the guide's statements among them) is asked
of both HTTP APIs as instant queries at a few times and as range queries with odd starts and steps.
Label sets, timestamps and values (1e-9 relative) and error/no-error (with errorType) must agree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from model.labels import to_labels
from model.series import Sample
from query.api.app import create_app
from store.open import open_store
from store.rollups import RollupJob
from tests.query.api.differential_data import HEAD_S, HISTORY_S, T0_S, head, history
from tests.query.api.differential_queries import generate
from tests.query.prometheus_ref import (
    assert_same,
    binaries_missing,
    http_call,
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
# The last range is aligned to 5 minutes: range functions over whole 5-minute multiples there read
# the store's rollups (rolled up by the job to the middle of the data, aggregated at query time
# after it), and must still agree.
RANGES_S = ((T0_S + 123.456, END_S, 67), (T0_S - 600, T0_S + 1500, 30), (T0_S, END_S, 300))


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
    RollupJob(store.backend).run(now_ms=(T0_S + HISTORY_S) * 1000)
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


# -- the rest of the API: same status code, errorType and (where the data are the same) body -----

_WINDOW = [("start", str(T0_S)), ("end", str(END_S))]
_CPU = ("match[]", "ma_container_cpu_util")
_LATE = ("start", str(T0_S + HISTORY_S - 600))
API_CASES = [
    ("labels", [*_WINDOW]),
    ("labels", [_CPU, ("match[]", "pod_up"), *_WINDOW]),
    ("labels", [("match[]", "up((")]),
    ("label/source/values", [_CPU, *_WINDOW]),
    ("label/__name__/values", [*_WINDOW]),
    ("label/le/values", [("match[]", "infer_service_request_cost_bucket")]),
    ("label/foo-bar/values", []),
    ("label/code/values", [("start", "yesterday")]),
    ("series", [_CPU, *_WINDOW]),
    # (series and labels are resolved per day in infersight, per chunk in Prometheus: windows that
    # cut through the data on one day would differ; this one ends after all series start and end)
    ("series", [("match[]", '{__name__=~"infer_service_request_total|pod_up"}'), _LATE]),
    ("series", []),
    ("series", [("match[]", '{code=""}')]),
    ("format_query", [("query", "sum(rate(x[5m]))by(a)")]),
    ("format_query", [("query", 'a{b="c"} / on(d) group_left(e) f offset 5m > bool 2')]),
    ("format_query", [("query", "sum((")]),
    ("query_exemplars", [("query", "pod_up"), *_WINDOW]),
    ("query_exemplars", [("query", "pod_up((")]),
    ("metadata", [("limit", "abc")]),
    ("status/buildinfo", []),
    ("query", []),
    ("query", [("query", "pod_up"), ("time", "yesterday")]),
    ("query", [("query", "pod_up"), ("timeout", "abc")]),
    ("query_range", [("query", "pod_up"), ("start", "0"), ("step", "1")]),
    ("query_range", [("query", "pod_up"), ("start", "0"), ("end", "100000"), ("step", "1")]),
    ("query_range", [("query", "pod_up"), ("start", "10"), ("end", "0"), ("step", "1")]),
    ("query_range", [("query", "pod_up"), ("start", "0"), ("end", "10"), ("step", "-1")]),
    ("query_range", [("query", "pod_up"), ("start", "0"), ("end", "10")]),
]
# Bodies that differ by design: metadata (Prometheus has no targets here), build details.
_SHAPE_ONLY = ("metadata", "status/buildinfo")
_GET_ONLY = ("label/", "metadata", "status/")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("path", "params"), API_CASES)
def test_api_route_as_prometheus(
    prometheus_url: str, client: TestClient, method: str, path: str, params: list[tuple[str, str]]
) -> None:
    if method == "POST" and path.startswith(_GET_ONLY):
        pytest.skip("Prometheus 2.42 serves this route by GET only (infersight takes POST too)")
    status, theirs = http_call(prometheus_url, method, path, params)
    ours = client.request(
        method,
        f"/api/v1/{path}",
        params=params if method == "GET" else None,
        content=urlencode(params) if method == "POST" else None,
        headers={"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else None,
    )
    assert ours.status_code == status, (theirs, ours.json())
    body = ours.json()
    assert body["status"] == theirs["status"]
    if theirs["status"] == "error":
        assert body["errorType"] == theirs["errorType"], (theirs, body)
    elif path.startswith(_SHAPE_ONLY):
        assert type(body["data"]) is type(theirs["data"])
    else:
        assert body["data"] == theirs["data"]


def test_staleness_markers_reach_both(prometheus_url: str, client: TestClient) -> None:
    """pod-0 stops at +300 s with a marker: a minute later it is gone at once, not after the lookback."""
    params = {"query": "pod_up", "time": str(T0_S + HISTORY_S + 360)}
    for body in (http_get(prometheus_url, "query", **params), _ours(client, "query", **params)):
        assert [s["metric"]["source"] for s in body["data"]["result"]] == ["pod-1"]
