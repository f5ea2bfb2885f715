"""Kubernetes events: captured real Event objects mapped to the guide's pod reasons, and the real
``kubernetes`` client watching a loopback stand-in for the API server (no cluster runs here)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from collector.k8s_events import KubernetesEventWatcher, to_event
from model.events import EventObject

IDENTITY = EventObject(project_id="p1", service_id="svc-1", service_name="my-llm", group_id="dep-1")


def _captured(testdata_dir: Path, name: str) -> str:
    return (testdata_dir / "captured/kubernetes/events" / name).read_text()


def test_captured_watch_line_maps_to_failed_mount(testdata_dir: Path) -> None:
    change = json.loads(_captured(testdata_dir, "fluent-bit_watch_v1_with_lastTimestamp.json"))
    event = to_event(change["object"], IDENTITY)
    assert event is not None
    assert (event.kind, event.type, event.reason) == ("pod", "Alarm", "FailedMount")
    assert event.obj.pod == "fluent-bit-78945dccd8-hvr55"
    assert event.obj.service_id == "svc-1"
    assert event.time_ms == 1722451635000  # lastTimestamp 2024-07-31T18:47:15Z
    assert 'configmap "fluent-bit-config" not found' in event.message


def test_captured_pulling_is_normal_and_non_pod_objects_are_skipped(testdata_dir: Path) -> None:
    pulling = json.loads(_captured(testdata_dir, "otel-stanza_k8s_event_input_pulling.json"))["body"]
    event = to_event(pulling, IDENTITY)
    assert event is not None
    assert (event.type, event.reason) == ("Normal", "Pulling")
    listing = json.loads(_captured(testdata_dir, "fluent-bit_eventlist_v1_with_lastTimestamp.json"))
    assert [to_event(item, IDENTITY) for item in listing["items"]] == [None]  # an Endpoints object


@pytest.mark.parametrize(
    ("reason", "message", "guide"),
    [
        ("BackOff", "Back-off restarting failed container", "CrashLoopBackOff"),
        ("BackOff", 'Back-off pulling image "x"', "BackOffPullImage"),
        ("Failed", 'Failed to pull image "x": not found', "FailedPullImage"),
        ("Failed", "Error: failed to start container", "BackOffStart"),
        ("Created", "Created container engine", "SuccessfulCreate"),
    ],
)
def test_kubernetes_reasons_become_the_guides(reason: str, message: str, guide: str) -> None:
    obj = {
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": reason,
        "message": message,
        "type": "Normal",
    }
    event = to_event(obj, IDENTITY)
    assert event is not None
    assert event.reason == guide


class _FakeApiServer(BaseHTTPRequestHandler):
    """Serves a list, one watch stream of captured lines, then 410 Gone, then an empty watch."""

    requests: list[dict[str, list[str]]] = []
    watch_lines: list[str] = []
    listing = ""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        type(self).requests.append(query)
        watches = sum(1 for q in type(self).requests if q.get("watch") == ["true"])
        if query.get("watch") != ["true"]:
            body = type(self).listing.encode()
        elif watches == 1:
            body = ("\n".join(type(self).watch_lines) + "\n").encode()
        elif watches == 2:
            status = {
                "kind": "Status",
                "code": 410,
                "reason": "Expired",
                "message": "too old resource version",
            }
            body = (json.dumps({"type": "ERROR", "object": status}) + "\n").encode()
        else:
            body = b""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_watch_resumes_from_last_version_and_relists_on_gone(testdata_dir: Path) -> None:
    _FakeApiServer.requests = []
    _FakeApiServer.listing = _captured(testdata_dir, "fluent-bit_eventlist_v1_with_lastTimestamp.json")
    pulling = json.loads(_captured(testdata_dir, "otel-stanza_k8s_event_input_pulling.json"))["body"]
    _FakeApiServer.watch_lines = [
        _captured(testdata_dir, "fluent-bit_watch_v1_with_lastTimestamp.json").strip(),
        json.dumps({"type": "ADDED", "object": pulling}),
    ]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
        api = client.CoreV1Api(client.ApiClient(config))
        received: list = []

        async def sink(events: list) -> None:
            received.extend(events)

        watcher = KubernetesEventWatcher("default", "my-llm-pod-0", IDENTITY, sink, api=api, retry_s=0.01)

        def emit(events: list) -> None:
            received.extend(events)
            if len(_FakeApiServer.requests) >= 4:
                watcher.stop()

        thread = threading.Thread(target=watcher.run_blocking, args=(emit,), daemon=True)
        thread.start()
        for _ in range(200):
            if len(_FakeApiServer.requests) >= 5:
                break
            threading.Event().wait(0.02)
        watcher.stop()
        thread.join(5)
    finally:
        server.shutdown()
    kinds = [
        ("watch" if q.get("watch") == ["true"] else "list", q.get("resourceVersion", [""])[0])
        for q in _FakeApiServer.requests
    ]
    # list → watch from the list's version → watch from the last version seen (29923, the Pulling
    # event) → 410 Gone → list again.
    assert kinds[:4] == [("list", ""), ("watch", "177157"), ("watch", "29923"), ("list", "")]
    assert [e.reason for e in received[:2]] == ["FailedMount", "Pulling"]
    assert all(e.source == "kubernetes" for e in received)
