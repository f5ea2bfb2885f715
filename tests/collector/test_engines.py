"""Engine adapters against each engine's real exposition (captured files, sources in their SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.engines import ADAPTERS
from collector.parse import ParsedSample, parse_body


def _scrape(testdata_dir: Path, relative: str) -> list[ParsedSample]:
    body = (testdata_dir / "captured/engines" / relative).read_bytes()
    return parse_body(body, "text/plain; version=0.0.4")


def _by_name(samples: list[ParsedSample]) -> dict[str, list[ParsedSample]]:
    out: dict[str, list[ParsedSample]] = {}
    for s in samples:
        out.setdefault(s.name, []).append(s)
    return out


def test_sglang_histograms_in_ms(testdata_dir: Path) -> None:
    raw = _scrape(testdata_dir, "sglang/sglang_docs_production_metrics_llama31-8b.prom")
    derived = _by_name(ADAPTERS["sglang"](raw))
    original = {s.name: s for s in raw if "le" not in s.labels}
    (ttft_sum,) = derived["infer_service_first_token_cost_sum"]
    assert ttft_sum.value == pytest.approx(original["sglang:time_to_first_token_seconds_sum"].value * 1000)
    bounds = [s.labels["le"] for s in derived["infer_service_first_token_cost_bucket"]]
    assert bounds[:3] == ["1.0", "5.0", "10.0"]
    assert bounds[-1] == "+Inf"
    assert "infer_service_request_cost_count" in derived
    assert "infer_service_token_count" in derived
    (conn,) = derived["infer_service_request_connect_count"]
    expected = original["sglang:num_running_reqs"].value + original["sglang:num_queue_reqs"].value
    assert conn.value == expected


def test_tgi_requests_by_code(testdata_dir: Path) -> None:
    raw = _scrape(testdata_dir, "tgi/tgi_metrics_trimmed.prom")
    derived = _by_name(ADAPTERS["tgi"](raw))
    codes = {s.labels["code"]: s.value for s in derived["infer_service_request_total"]}
    assert codes == {"2xx": 109.0, "4xx": 2.0}  # tgi_request_success 109, failure{err="validation"} 2
    assert "infer_service_request_connect_count" in derived


def test_llamacpp_tokens_and_connections(testdata_dir: Path) -> None:
    raw = _scrape(testdata_dir, "llamacpp/metrics.txt")
    derived = _by_name(ADAPTERS["llamacpp"](raw))
    original = {s.name: s.value for s in raw}
    (tokens,) = derived["infer_service_token_count"]
    assert tokens.value == original["llamacpp:tokens_predicted_total"]
    (conn,) = derived["infer_service_request_connect_count"]
    assert conn.value == original["llamacpp:requests_processing"] + original["llamacpp:requests_deferred"]


@pytest.mark.parametrize(
    "relative",
    [
        "mindie/mindie_ms_metricsSingleNodeData_0.prom",
        "mindie/mindie_ms_metricsAggregate4SingleNodeOutput.prom",
    ],
)
def test_mindie_maps_like_vllm(testdata_dir: Path, relative: str) -> None:
    raw = _scrape(testdata_dir, relative)
    derived = _by_name(ADAPTERS["mindie"](raw))
    assert {s.labels["code"] for s in derived["infer_service_request_total"]} == {"2xx", "5xx"}
    assert derived["infer_service_first_token_cost_bucket"][0].labels["le"] == "1.0"
    for name in (
        "infer_service_per_token_cost_count",
        "infer_service_input_token_quantity_sum",
        "infer_service_token_count",
    ):
        assert name in derived, name


def test_every_adapter_keeps_to_the_guides_names(testdata_dir: Path) -> None:
    files = {
        "vllm": "vllm/vllm_datadog_fixture_opt-125m.prom",
        "sglang": "sglang/sglang_docs_production_metrics_llama31-8b.prom",
        "tgi": "tgi/tgi_metrics_trimmed.prom",
        "llamacpp": "llamacpp/metrics.txt",
        "mindie": "mindie/mindie_ms_metricsSingleNodeData_0.prom",
    }
    for engine, relative in files.items():
        derived = ADAPTERS[engine](_scrape(testdata_dir, relative))
        assert derived, engine
        assert all(s.name.startswith("infer_service_") for s in derived), engine
