"""``/api/v1/metadata`` from the targets' TYPE/HELP/UNIT: Prometheus' shape and parameters, the guide's
descriptions, projects kept apart, hostile ingest bodies answered 4xx; and the whole path from a
target's HELP line through a sidecar's disk buffer and HTTP to the API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from exporters.buffer import BufferedExporter
from exporters.http import HttpExporter
from exporters.records import METADATA
from exporters.sender import SendWith
from model.catalog import GUIDE_METADATA
from model.labels import to_labels
from model.series import Sample
from query.api.app import AuthSettings, create_app
from store.api_keys import KeyStore
from store.open import Store
from tests.collector.conftest import Canned, CannedServer
from tests.query.api.live_server import live_server

T0_MS = 1_764_000_000_000
ADMIN = "metadata-admin-key"


def _meta(metric: str, help_: str, type_: str = "counter", **extra: Any) -> dict[str, Any]:
    return {"metric": metric, "type": type_, "help": help_, "unit": "", "time": T0_MS, **extra}


def _post(client: TestClient, *records: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post("/api/v1/ingest/metadata", json={"metadata": list(records)}, headers=headers)


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


@pytest.fixture
def client(chdb_store: Store) -> TestClient:
    samples = [
        Sample(to_labels({"__name__": name, "service_id": "s"}), T0_MS, 1.0)
        for name in (
            "req_total",
            "lat_bucket",
            "lat_count",
            "lat_sum",
            "no_meta_total",
            "infer_service_token_count",
        )
    ]
    chdb_store.writer.write(samples)
    return TestClient(create_app(chdb_store))


def test_exposed_help_reaches_metadata_in_prometheus_shape(client: TestClient) -> None:
    assert _data(
        _post(
            client,
            _meta("req_total", "Requests served.", instance_name="pod-0"),
            _meta("req_total", "Requests served.", instance_name="pod-1"),  # the same text: one entry
            _meta("req_total", "Requests (v2).", instance_name="pod-2"),
            _meta("lat", "Latency.", "histogram"),
            _meta("infer_service_token_count", "the engine's own words"),
        )
    ) == {"records": 5}
    data = _data(client.get("/api/v1/metadata"))
    assert data["req_total"] == [
        {"type": "counter", "help": "Requests (v2).", "unit": ""},
        {"type": "counter", "help": "Requests served.", "unit": ""},
    ]
    assert data["lat"] == [{"type": "histogram", "help": "Latency.", "unit": ""}]
    assert "lat_bucket" not in data
    assert "lat_count" not in data
    assert data["no_meta_total"] == [{"type": "counter", "help": "", "unit": ""}]  # implied by its name
    guide = GUIDE_METADATA["infer_service_token_count"].entry()
    assert data["infer_service_token_count"] == [
        guide,
        {"type": "counter", "help": "the engine's own words", "unit": ""},
    ]
    assert guide["help"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"metric": "req_total"}, {"req_total": 2}),
        ({"metric": "req_total", "limit_per_metric": "1"}, {"req_total": 1}),
        ({"metric": "req_total", "limit_per_metric": "0"}, {"req_total": 2}),
        ({"metric": "nope"}, {}),
        ({"limit": "1"}, {"infer_service_token_count": 1}),
        ({"limit": "0"}, {}),
    ],
)
def test_parameters_as_prometheus(
    client: TestClient, params: dict[str, str], expected: dict[str, int]
) -> None:
    _post(client, _meta("req_total", "A", instance_name="a"), _meta("req_total", "B", instance_name="b"))
    for method in ("GET", "POST"):
        if method == "GET":
            response = client.get("/api/v1/metadata", params=params)
        else:
            response = client.post("/api/v1/metadata", data=params)
        assert {name: len(entries) for name, entries in _data(response).items()} == expected


@pytest.mark.parametrize("name", ["limit", "limit_per_metric"])
def test_a_bad_limit_is_bad_data(client: TestClient, name: str) -> None:
    response = client.get("/api/v1/metadata", params={name: "abc"})
    assert response.status_code == 400
    assert response.json() == {
        "status": "error",
        "errorType": "bad_data",
        "error": f"{name} must be a number",
    }


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"metadata": {}}',
        b'{"metadata": [1]}',
        b'{"metadata": [{"metric": "bad name"}]}',
        b'{"metadata": [{"metric": "x", "type": "nonsense"}]}',
        b'{"metadata": [{"metric": "x", "help": 5}]}',
        b'{"metadata": [{"metric": "x", "time": "now"}]}',
        b'{"metadata": [{"metric": "x", "time": 1e400}]}',
        b'{"metadata": [{"metric": "x", "help": "' + b"h" * 5000 + b'"}]}',
        b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        json.dumps({"metadata": [{"metric": "x"}] * 10_001}).encode(),
        b'{"metadata": [{"metric": "x", "help": "\\ud800"}]}',
        b'{"metadata": [{"metric": "x", "time": NaN}]}',
    ],
)
def test_hostile_ingest_bodies_are_refused_with_400(client: TestClient, body: bytes) -> None:
    response = client.post(
        "/api/v1/ingest/metadata", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["errorType"] == "bad_data"
    assert "x" not in _data(client.get("/api/v1/metadata"))


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient) -> None:
    response = client.post("/api/v1/ingest/metadata", content=b" " * (4 * 1024 * 1024 + 1))
    assert response.status_code == 400
    assert "larger than" in response.json()["error"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(
        st.dictionaries(
            st.sampled_from(["metric", "type", "help", "unit", "project_id", "service_id", "time", "junk"]),
            st.one_of(
                st.text(max_size=20),
                st.integers(),
                st.none(),
                st.booleans(),
                st.floats(allow_nan=False, allow_infinity=False),
            ),
            max_size=6,
        ),
        max_size=5,
    )
)
def test_random_ingest_records_never_5xx(client: TestClient, records: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/ingest/metadata", json={"metadata": records})
    assert response.status_code in (200, 400), response.text
    assert client.get("/api/v1/metadata").status_code == 200


def test_projects_see_and_write_only_their_own(chdb_store: Store) -> None:
    keys = KeyStore(chdb_store.backend)
    _, a_write = keys.create("proj-a", ["write"])
    _, a_read = keys.create("proj-a", ["read"])
    _, b_all = keys.create("proj-b", ["read", "write"])
    client = TestClient(create_app(chdb_store, auth=AuthSettings(enabled=True, admin_key=ADMIN)))

    def auth(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    assert _post(client, _meta("a_total", "secret of a"), **auth(a_write)).status_code == 200
    refused = _post(client, _meta("b_total", "into a", project_id="proj-a"), **auth(b_all))
    assert refused.status_code == 403
    assert _post(client, _meta("a_total", "read key"), **auth(a_read)).status_code == 403
    assert _post(client, _meta("b_total", "of b"), **auth(b_all)).status_code == 200
    assert _data(client.get("/api/v1/metadata", headers=auth(a_read))) == {
        "a_total": [{"type": "counter", "help": "secret of a", "unit": ""}]
    }
    seen_by_b = client.get("/api/v1/metadata", headers=auth(b_all)).text
    assert "secret of a" not in seen_by_b
    assert "a_total" not in seen_by_b
    everything = _data(client.get("/api/v1/metadata", headers=auth(ADMIN)))
    assert set(everything) == {"a_total", "b_total"}


EXPOSITION = b"""# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 2
# HELP app_requests_total Requests the app served.
# TYPE app_requests_total counter
app_requests_total 7
"""


def test_a_targets_help_travels_from_its_scrape_through_buffer_and_http_to_the_api(
    chdb_store: Store, tmp_path: Path
) -> None:
    """A sidecar in another process: scrape → metadata buffer on disk → POST → store → API."""
    app = create_app(chdb_store)
    with live_server(app) as url:

        async def sidecar_side() -> None:
            http = HttpExporter(url)
            buffer = BufferedExporter(SendWith(http.send_metadata), tmp_path / "meta", codec=METADATA)
            async with CannedServer({"/metrics": Canned(EXPOSITION)}) as target:
                config = TargetConfig(
                    host="127.0.0.1",
                    port=target.port,
                    allowed_ports=(target.port,),
                    project_id="p",
                    service_id="s",
                )
                sidecar = Sidecar(ScrapeConfig(), config, ListConsumer(), metadata=buffer.consume)
                await sidecar.scrape_once()
                await sidecar.stop()
            assert await buffer.flush()
            await buffer.stop()
            await http.aclose()

        asyncio.run(sidecar_side())
        data = httpx.get(f"{url}/api/v1/metadata").json()["data"]
    assert data["vllm:num_requests_running"] == [
        {"type": "gauge", "help": "Number of requests currently running on GPU.", "unit": ""}
    ]
    assert data["app_requests_total"] == [{"type": "counter", "help": "Requests the app served.", "unit": ""}]
