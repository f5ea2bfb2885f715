"""``/api/v1/query_exemplars``: real requests through the proxy, read back through the API, per project;
and the answer's shape checked against a real Prometheus 2.42 with exemplar storage on."""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from collector import catalog
from collector.config import ProxyConfig
from collector.proxy import IngressProxy
from collector.proxy.exemplars import Exemplar, exemplars_to_wire
from model.labels import to_labels
from model.series import Sample
from model.wire import encode_batch
from query.api.app import AuthSettings, create_app
from simulator import SimulatorConfig, SimulatorServer
from store.exemplars import ExemplarStore
from store.open import Store
from tests.query.prometheus_ref import binaries_missing, free_port, http_get

ADMIN = "admin-secret-for-exemplars"
TRACE = "0af7651916cd43dd8448eb211c80319c"
TTFT_QUERY = f"histogram_quantile(0.9, sum by (le) (rate({catalog.FIRST_TOKEN_COST}_bucket[5m])))"


@pytest.fixture
def app_client(chdb_store: Store) -> TestClient:
    return TestClient(create_app(chdb_store, auth=AuthSettings(enabled=True, admin_key=ADMIN)))


def _key(client: TestClient, project: str) -> dict[str, str]:
    response = client.post(
        "/api/v1/admin/keys",
        json={"project_id": project, "permissions": ["read", "write"], "name": project},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['data']['key']}"}


class _Shipper:
    """The sidecar's path to the server, as ``HttpExporter`` takes it: samples to ``/ingest``,
    exemplars to ``/ingest/exemplars``, with the project's key."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def _post(self, path: str, body: Any) -> None:
        response = self.client.post(path, json=body, headers=self.headers)
        assert response.status_code == 200, response.text

    async def consume(self, batch: list[Sample]) -> None:
        await asyncio.to_thread(self._post, "/api/v1/ingest", encode_batch(batch))

    async def exemplars(self, exemplars: list[Exemplar]) -> None:
        await asyncio.to_thread(self._post, "/api/v1/ingest/exemplars", exemplars_to_wire(exemplars))


async def _through_the_proxy(shipper: _Shipper) -> list[str]:
    """Three streamed chat requests through the proxy to the simulator; the last one traced.
    Returns the completion ids the client got."""
    sim = SimulatorServer(SimulatorConfig(seed=5, ttft_median_ms=20, itl_median_ms=2, output_tokens_max=6))
    port = await sim.start()
    proxy = IngressProxy(
        ProxyConfig(listen="127.0.0.1:0", upstream=f"http://127.0.0.1:{port}", flush_interval_s=3600),
        {"service_id": "svc"},
        shipper,
        exemplar_sink=shipper.exemplars,
    )
    proxy_port = await proxy.start()
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key="x", max_retries=0)
    ids = []
    try:
        for i in range(3):
            headers = {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"} if i == 2 else {}
            stream = await client.chat.completions.create(
                model="sim-model",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                extra_headers=headers,
            )
            async for chunk in stream:
                ids.append(chunk.id)
        for _ in range(500):  # the proxy records each request after its last byte went out
            if proxy.stats.requests:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
    finally:
        await client.close()
        await proxy.stop()  # the last flush: samples, then exemplars
        await sim.stop()
    return sorted(set(ids))


def test_exemplars_from_real_requests_read_back_per_project(app_client: TestClient) -> None:
    p1, p2 = _key(app_client, "p1"), _key(app_client, "p2")
    ids = asyncio.run(_through_the_proxy(_Shipper(app_client, p1)))
    assert len(ids) == 3
    now = time.time()
    params = {"query": TTFT_QUERY, "start": now - 600, "end": now + 60}

    body = app_client.get("/api/v1/query_exemplars", params=params, headers=p1).json()
    assert body["status"] == "success", body
    assert body["data"], body
    for item in body["data"]:
        assert set(item) == {"seriesLabels", "exemplars"}
        series = item["seriesLabels"]
        assert series["__name__"] == f"{catalog.FIRST_TOKEN_COST}_bucket"
        assert (series["service_id"], series["project_id"]) == ("svc", "p1")
        for e in item["exemplars"]:
            assert set(e) == {"labels", "value", "timestamp"}
            assert e["labels"]["request_id"] in ids  # the id the client got (chatcmpl-…)
            assert float(e["value"]) <= float(series["le"])
            assert now - 600 <= e["timestamp"] <= now + 60
    traced = [e for item in body["data"] for e in item["exemplars"] if "trace_id" in e["labels"]]
    assert [e["labels"]["trace_id"] for e in traced] == [TRACE]  # the last request, the latest in its bucket

    # the cost histogram too, by a plain selector; POST form as Grafana sends it
    form = {"query": f"{catalog.REQUEST_COST}_bucket", "start": str(now - 600), "end": str(now + 60)}
    cost = app_client.post("/api/v1/query_exemplars", data=form, headers=p1).json()["data"]
    assert sum(len(item["exemplars"]) for item in cost) >= 1

    # another project sees none of them; a query without selectors is a 204, as in Prometheus
    assert app_client.get("/api/v1/query_exemplars", params=params, headers=p2).json()["data"] == []
    none = app_client.get("/api/v1/query_exemplars", params={**params, "query": "1 + 1"}, headers=p1)
    assert (none.status_code, none.content) == (204, b"")
    backwards = app_client.get(
        "/api/v1/query_exemplars", params={**params, "start": now, "end": now - 1}, headers=p1
    )
    assert backwards.status_code == 400
    assert backwards.json()["errorType"] == "bad_data"


def test_ingest_is_confined_to_the_keys_project_and_reads_hostile_bodies_as_400(
    app_client: TestClient,
) -> None:
    p1 = _key(app_client, "p1")
    read_only = app_client.post(
        "/api/v1/admin/keys",
        json={"project_id": "p1", "permissions": ["read"], "name": "ro"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    ).json()["data"]["key"]
    one = Exemplar(
        to_labels({"__name__": "x_bucket", "le": "1", "project_id": "p2"}), (("request_id", "r"),), 1.0, 1
    )
    response = app_client.post("/api/v1/ingest/exemplars", json=exemplars_to_wire([one]), headers=p1)
    assert response.status_code == 403
    response = app_client.post(
        "/api/v1/ingest/exemplars", json={"exemplars": []}, headers={"Authorization": f"Bearer {read_only}"}
    )
    assert response.status_code == 403
    for body in (b"not json", b"[" * 100_000, b'{"exemplars": [{"series": 1}]}', b"\xff"):
        response = app_client.post("/api/v1/ingest/exemplars", content=body, headers=p1)
        assert response.status_code == 400, body[:20]
        assert response.json()["errorType"] == "bad_data"
    huge = b'{"exemplars": [' + b" " * (9 << 20) + b"]}"
    assert app_client.post("/api/v1/ingest/exemplars", content=huge, headers=p1).status_code in (400, 413)
    # dated where no sample may be (past the door's hour ahead; past what the store holds): skipped,
    # counted in the answer, the others kept
    now_ms = int(time.time() * 1000)
    dated = [
        Exemplar(to_labels({"__name__": "x_bucket", "le": "1"}), (("request_id", f"r{i}"),), 1.0, ts)
        for i, ts in enumerate((now_ms, now_ms + 7_200_000, 253_402_300_799_999))
    ]
    response = app_client.post("/api/v1/ingest/exemplars", json=exemplars_to_wire(dated), headers=p1)
    assert response.status_code == 200
    assert response.json()["data"] == {"exemplars": 1, "out_of_bounds": 2}


# -- the answer's shape against Prometheus 2.42 (--enable-feature=exemplar-storage) ---------------

SERIES = {"__name__": "infer_service_request_cost_bucket", "le": "100.0", "service_id": "svc"}
EXEMPLAR_TS_S = 1_700_000_000.123


class _OpenMetrics(http.server.BaseHTTPRequestHandler):
    body = (
        "# TYPE infer_service_request_cost histogram\n"
        'infer_service_request_cost_bucket{service_id="svc",le="100.0"} 1 '
        f'# {{request_id="chatcmpl-1",trace_id="{TRACE}"}} 42.5 {EXEMPLAR_TS_S}\n'
        'infer_service_request_cost_bucket{service_id="svc",le="+Inf"} 1\n'
        'infer_service_request_cost_count{service_id="svc"} 1\n'
        'infer_service_request_cost_sum{service_id="svc"} 42.5\n'
        "# EOF\n"
    ).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def prometheus_with_exemplars(tmp_path: Path) -> Iterator[tuple[str, str]]:
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OpenMetrics)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    target_address = f"127.0.0.1:{target.server_address[1]}"
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        f"  - job_name: engine\n    static_configs:\n      - targets: ['{target_address}']\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            "--enable-feature=exemplar-storage",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}/api/v1", target_address
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        target.shutdown()


@pytest.mark.integration
@pytest.mark.skipif(binaries_missing(), reason="needs prometheus 2.42 on PATH")
def test_the_answer_is_the_one_prometheus_gives(
    prometheus_with_exemplars: tuple[str, str], chdb_store: Store
) -> None:
    url, target = prometheus_with_exemplars
    params = {"query": "infer_service_request_cost_bucket", "start": "1699999000", "end": "1700001000"}
    theirs: Any = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            theirs = http_get(url, "query_exemplars", **params)
        except OSError:
            theirs = None
        if isinstance(theirs, dict) and theirs.get("data"):
            break
        time.sleep(0.5)
    assert isinstance(theirs, dict), theirs
    assert theirs["data"], f"prometheus kept no exemplar: {theirs}"
    labels = {**SERIES, "job": "engine", "instance": target}
    # the same series and exemplar in our store, as the proxy's sidecar ships them
    chdb_store.writer.write([Sample(to_labels(labels), 1_700_000_000_000, 1.0)])
    ids = (("request_id", "chatcmpl-1"), ("trace_id", TRACE))
    ExemplarStore(chdb_store.backend).write(
        [Exemplar(to_labels(labels), ids, 42.5, round(EXEMPLAR_TS_S * 1000))]
    )
    client = TestClient(create_app(chdb_store))
    assert client.get("/api/v1/query_exemplars", params=params).json() == theirs
    nothing = {**params, "query": "nothing_here"}
    assert client.get("/api/v1/query_exemplars", params=nothing).json() == http_get(
        url, "query_exemplars", **nothing
    )
    no_selector = {**params, "query": "1 + 1"}
    with urllib.request.urlopen(f"{url}/query_exemplars?{urllib.parse.urlencode(no_selector)}") as theirs_204:
        assert (theirs_204.status, theirs_204.read()) == (204, b"")
    ours_204 = client.get("/api/v1/query_exemplars", params=no_selector)
    assert (ours_204.status_code, ours_204.content) == (204, b"")
