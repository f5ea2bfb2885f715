"""The sidecar's OTLP export, round trip: sketch rows and scraped samples pushed through
``opentelemetry-sdk``'s OTLP/HTTP exporter into a live ``infersight server`` give the same
quantiles and series as the same rows and samples written directly to another store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import catalog
from collector.proxy.observe import feed_observer
from collector.proxy.stats import LATENCY_BUCKETS_MS
from collector.proxy.timing import RequestObservation
from collector.window import WindowedSketches
from exporters.otlp import GenAiAttributes, OtlpExporter, parse_headers, rescaled, sketches_to_metrics
from infersight.config import ConfigError, config_from_dict
from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from query.api.app import create_app
from sketch import ExponentialHistogram
from store.open import Store, open_store
from store.sketches import SketchWriter
from tests.query.api.live_server import live_server

QS = [0.5, 0.9, 0.99, 0.999]
NOW_S = time.time()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """One store (chDB is one per process): the two paths write under two projects."""
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    yield opened
    opened.close()


def _rows(project: str = "p") -> list:
    rng = np.random.default_rng(11)
    windows = WindowedSketches()
    for pod in ("pod-0", "pod-1"):
        identity = {"service_id": "svc", "source": pod, "project_id": project}
        for second in range(30):
            ts = NOW_S - 60 + second
            windows.observe(catalog.FIRST_TOKEN_COST, identity, rng.lognormal(4, 0.7, 40), ts)
            windows.observe(catalog.PER_TOKEN_COST, identity, rng.lognormal(2.5, 0.3, 200), ts)
            windows.observe(
                catalog.OUTPUT_TOKEN_QUANTITY, identity, rng.integers(1, 500, 40).astype(float), ts
            )
    return windows.drain_all()


def _samples(project: str) -> list[Sample]:
    ts = int(NOW_S * 1000) - 5000
    identity = {"service_id": "svc", "source": "pod-0", "project_id": project}
    out = [
        Sample(to_labels({"__name__": catalog.REQUEST_TOTAL, "code": "2xx", **identity}), ts, 1234.0),
        Sample(to_labels({"__name__": catalog.REQUEST_CONNECT_COUNT, **identity}), ts, 7.0),
        Sample(to_labels({"__name__": f"{catalog.REQUEST_COST}_sum", **identity}), ts, 98765.5),
        Sample(to_labels({"__name__": f"{catalog.REQUEST_COST}_count", **identity}), ts, 1234.0),
    ]
    running = 0
    for i, bound in enumerate((*LATENCY_BUCKETS_MS, float("inf"))):
        running += i * 3
        le = "+Inf" if bound == float("inf") else f"{float(bound)}"
        labels = {"__name__": f"{catalog.REQUEST_COST}_bucket", "le": le, **identity}
        out.append(Sample(to_labels(labels), ts, float(min(running, 1234))))
    return out


def _quantiles(store: Store, project: str) -> dict[str, list]:
    from query.api.sketches import _answer  # the route's own answer, as Grafana would read it
    from store.sketches import SketchReader

    reader = SketchReader(store.backend)
    out = {}
    end = int(NOW_S * 1000) + 60_000
    for metric in (catalog.FIRST_TOKEN_COST, catalog.PER_TOKEN_COST, catalog.OUTPUT_TOKEN_QUANTITY):
        for source in ("pod-0", "pod-1", None):
            filters = {"project_id": project, **({"source": source} if source else {})}
            merged = reader.merged(metric, filters, end - 600_000, end, 60_000)
            query = {
                "metric": metric,
                "filters": filters,
                "start_ms": end - 600_000,
                "end_ms": end,
                "period_ms": 60_000,
                "qs": QS,
            }
            out[f"{metric}/{source}"] = _answer({**query, "filters": {}}, merged)["periods"]
    return out


def _series(store: Store, project: str) -> dict:
    matchers = [
        Matcher("__name__", MatchOp.RE, "infer_service_.*"),
        Matcher("project_id", MatchOp.EQ, project),
    ]
    found = store.querier.select(matchers, 0, int(NOW_S * 1000) + 60_000)
    return {
        tuple(sorted((k, v) for k, v in s.labels.items() if k != "project_id")): (
            s.ts_ms.tolist(),
            s.values.tolist(),
        )
        for s in found
    }


def test_round_trip_gives_the_direct_paths_quantiles_and_series(store: Store) -> None:
    SketchWriter(store.backend).write(_rows("direct"))
    store.writer.write(_samples("direct"))
    rows = _rows("otlp")
    with live_server(create_app(store)) as url:
        exporter = OtlpExporter(
            url + "/v1/metrics", genai=GenAiAttributes(provider_name="vllm", request_model="m")
        )

        async def push() -> None:
            await exporter.send_sketches(rows)
            await exporter.send_sketches(rows)  # a buffer's resend: read once
            await exporter.send(_samples("otlp"))

        asyncio.run(push())
        exporter.shutdown()
    want = _quantiles(store, "direct")
    assert sum(p["count"] for p in want[f"{catalog.FIRST_TOKEN_COST}/None"]) == 2 * 30 * 40
    assert _quantiles(store, "otlp") == want
    direct, otlp = _series(store, "direct"), _series(store, "otlp")
    assert {key: otlp.get(key) for key in direct} == direct
    # Beside them, the exponential histograms' own _count/_sum (as the receiver writes any), counted once.
    extra = {dict(key)["__name__"] for key in set(otlp) - set(direct)}
    sketched = (catalog.FIRST_TOKEN_COST, catalog.PER_TOKEN_COST, catalog.OUTPUT_TOKEN_QUANTITY)
    assert extra == {f"{m}_{part}" for m in sketched for part in ("count", "sum")}
    counts = [
        v[-1] for k, (_, v) in otlp.items() if dict(k)["__name__"] == f"{catalog.FIRST_TOKEN_COST}_count"
    ]
    assert sorted(counts) == [30 * 40, 30 * 40]
    assert len(direct) == 4 + len(LATENCY_BUCKETS_MS) + 1  # and +Inf


def test_genai_metrics_beside_the_guide_names(store: Store) -> None:
    rows = _rows()
    with live_server(create_app(store)) as url:
        exporter = OtlpExporter(
            url + "/v1/metrics", genai=GenAiAttributes(provider_name="vllm", server_address="10.0.0.7")
        )
        asyncio.run(exporter.send_sketches(rows))
        exporter.shutdown()
    from store.sketches import SketchReader

    end = int(NOW_S * 1000) + 60_000
    reader = SketchReader(store.backend)
    ttft_s = reader.merged(
        "gen_ai_server_time_to_first_token_seconds", {"source": "pod-0"}, end - 600_000, end, 600_000
    )
    ttft_ms = reader.merged(catalog.FIRST_TOKEN_COST, {"source": "pod-0"}, end - 600_000, end, 600_000)
    assert sum(m.count for m in ttft_s) == sum(m.count for m in ttft_ms) == 30 * 40
    tokens = store.querier.select(
        [Matcher("__name__", MatchOp.EQ, "gen_ai_client_token_usage_count")], 0, end
    )
    assert {s.labels["gen_ai_token_type"] for s in tokens} == {"output"}
    assert all(
        s.labels["gen_ai_provider_name"] == "vllm" and s.labels["server_address"] == "10.0.0.7"
        for s in tokens
    )
    assert all(s.labels["gen_ai_operation_name"] == "chat" for s in tokens)


def test_failed_requests_carry_error_type_and_still_count_in_the_quantiles(store: Store) -> None:
    """The proxy's callback puts a failed request's values in rows labelled ``error_type``; the
    GenAI metrics carry it as ``error.type`` and only there, and the quantiles merge over it."""
    windows = WindowedSketches()
    on_request = feed_observer(windows, {"service_id": "svc", "source": "pod-0", "project_id": "p"})
    for i in range(40):
        status, outcome = (
            (503, "ok") if i % 10 == 0 else (200, "upstream_timeout") if i % 10 == 1 else (200, "ok")
        )
        on_request(
            RequestObservation(NOW_S - 30, "POST", "/v1/chat/completions", status, 100.0 + i, outcome=outcome)
        )
    rows = windows.drain_all()
    metrics = {m.name: m for m in sketches_to_metrics(rows, {"gen_ai.operation.name": "chat"})}
    duration = metrics["gen_ai.server.request.duration"].data.data_points
    errors = {p.attributes.get("error.type"): p.count for p in duration}
    assert errors == {None: 32, "503": 4, "upstream_timeout": 4}
    assert all(catalog.ERROR_TYPE not in p.attributes for p in duration)
    guide = metrics[catalog.REQUEST_COST].data.data_points
    assert {p.attributes.get(catalog.ERROR_TYPE): p.count for p in guide} == errors
    with live_server(create_app(store)) as url:
        exporter = OtlpExporter(url + "/v1/metrics")
        asyncio.run(exporter.send_sketches(rows))
        exporter.shutdown()
    from store.sketches import SketchReader

    end = int(NOW_S * 1000) + 60_000
    merged = SketchReader(store.backend).merged(
        "gen_ai_server_request_duration_seconds", {"source": "pod-0"}, end - 600_000, end, 600_000
    )
    assert sum(m.count for m in merged) == 40
    failed = store.querier.select(
        [Matcher("__name__", MatchOp.EQ, "gen_ai_server_request_duration_seconds_count")], 0, end
    )
    assert {s.labels.get("error_type", ""): s.values[-1] for s in failed} == {
        "": 32,
        "503": 4,
        "upstream_timeout": 4,
    }


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(0.01, 1e6), min_size=1, max_size=300))
def test_rescaled_sketches_stay_within_twice_the_error(values: list[float]) -> None:
    sketch = ExponentialHistogram()
    sketch.add_many(np.asarray(values))
    seconds = rescaled(sketch, 1e-3)
    assert seconds.count == sketch.count
    exact = np.quantile(np.asarray(values) / 1000, QS, method="inverted_cdf")
    assert np.all(np.abs(seconds.quantiles(QS) - exact) <= exact * 2.2 * sketch.relative_error)


def test_config_keys() -> None:
    config = config_from_dict(
        {"otlp_export": {"endpoint": "http://c:4318/v1/metrics", "headers": "a=1, b = x=y"}}
    )
    assert config.otlp_export.endpoint == "http://c:4318/v1/metrics"
    assert parse_headers(config.otlp_export.headers) == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError):
        config_from_dict({"otlp_export": {"endpoint": "c:4318"}})
    with pytest.raises(ConfigError):
        config_from_dict({"otlp_export": {"headers": "novalue"}})


def test_the_sidecar_ships_to_the_server_and_to_otlp(store: Store, tmp_path: Path) -> None:
    """``otlp_export.endpoint`` set: the sidecar's sketch windows go to the server as before and,
    through buffers of their own, to the OTLP endpoint (here the same server's ``/v1/metrics``)."""
    from infersight.config import config_from_dict
    from infersight.sidecar_process import SidecarProcess

    rows = _rows("wired")
    with live_server(create_app(store)) as url:
        config = config_from_dict(
            {
                "sidecar": {"ship_to": url},
                "buffer": {"dir": str(tmp_path / "buffer")},
                "otlp_export": {"endpoint": url + "/v1/metrics", "genai_provider": "sglang"},
            }
        )

        async def run() -> None:
            process = SidecarProcess(config)
            await process.exporters.start()
            for buffer in process.otlp_buffers:
                await buffer.start()
            await process.sketch_consumer.consume(rows)
            assert await process.exporters.flush()
            assert all(await asyncio.gather(*(b.flush() for b in process.otlp_buffers)))
            for buffer in process.otlp_buffers:
                await buffer.stop()
            await process.exporters.stop()
            await process._http.aclose()
            process.otlp.shutdown()

        asyncio.run(run())
    from store.sketches import SketchReader

    end = int(NOW_S * 1000) + 60_000
    reader = SketchReader(store.backend)
    # Both paths wrote the guide's rows into this one server, each once: pointing otlp_export at the
    # server the sidecar already ships to counts every window twice (docs/opentelemetry.md).
    direct_and_otlp = reader.merged(
        catalog.FIRST_TOKEN_COST, {"project_id": "wired"}, end - 600_000, end, 600_000
    )
    assert sum(m.count for m in direct_and_otlp) == 2 * 2 * 30 * 40
    genai = reader.merged(
        "gen_ai_server_time_to_first_token_seconds", {"project_id": "wired"}, end - 600_000, end, 600_000
    )
    assert sum(m.count for m in genai) == 2 * 30 * 40
