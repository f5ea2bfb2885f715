"""infersight's engine series (beyond the guide) from each engine's exposition: the captured real
ones (tests/testdata/captured/engines/, sources in their SOURCE.md), llama.cpp's per-interval ms per
token through the sidecar, the chDB store and the query API, and the Dynamo frontend."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from collector.engines import ADAPTERS, adapt
from collector.parse import ParsedSample, parse_body
from query.api.app import create_app
from store.open import Store

CAPTURED = "captured/engines"


def _scrape(testdata_dir: Path, relative: str) -> list[ParsedSample]:
    return parse_body((testdata_dir / CAPTURED / relative).read_bytes(), "text/plain; version=0.0.4")


def _one(samples: list[ParsedSample], name: str, **labels: str) -> ParsedSample:
    hits = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


def test_vllm_v1_series(testdata_dir: Path) -> None:
    raw = _scrape(testdata_dir, "vllm/vllm_datadog_fixture_opt-125m.prom")
    derived = ADAPTERS["vllm"](raw)
    model = {"model_name": "facebook/opt-125m"}
    queue_sum = _one(raw, "vllm:request_queue_time_seconds_sum").value
    assert _one(derived, "infersight_engine_queue_time_ms_sum").value == pytest.approx(queue_sum * 1000)
    for phase in ("prefill", "decode"):
        count = _one(raw, f"vllm:request_{phase}_time_seconds_count").value
        assert _one(derived, f"infersight_engine_{phase}_time_ms_count").value == count
        assert _one(derived, f"infersight_engine_{phase}_time_ms_bucket", le="+Inf").value == count
    assert _one(derived, "infersight_engine_prefix_cache_queries_total", **model).value == 117.0
    assert _one(derived, "infersight_engine_prefix_cache_hits_total", **model).value == 64.0
    assert _one(derived, "infersight_engine_preemptions_total", **model).value == 0.0
    finished = _one(derived, "infersight_engine_requests_finished_total", finish_reason="length")
    assert finished.value == 1.0
    assert "finished_reason" not in finished.labels
    # the V1 gauge only, although the capture has the V0 one too
    assert [s.labels for s in derived if s.name == "infersight_engine_kv_cache_usage_ratio"] == [model]


def test_vllm_kv_cache_v0_name_only_when_alone() -> None:
    v0 = 'vllm:gpu_cache_usage_perc{model_name="m"} 0.25\n'
    v1 = 'vllm:kv_cache_usage_perc{model_name="m"} 0.5\n'
    for body, expected in ((v0, 0.25), (v0 + v1, 0.5), (v1, 0.5)):
        derived = ADAPTERS["vllm"](parse_body(body.encode(), "text/plain"))
        assert [s.value for s in derived if s.name == "infersight_engine_kv_cache_usage_ratio"] == [expected]


def test_vllm_lora_adapters_counted_from_the_info_series() -> None:
    # vllm/v1/metrics/loggers.py sets this gauge to the current time, with adapter names in labels
    body = (
        "# TYPE vllm:lora_requests_info gauge\n"
        'vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql,chat",waiting_lora_adapters=""}'
        " 1.7e9\n"
        'vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql",waiting_lora_adapters="a,b,c"}'
        " 1.6e9\n"
    )
    derived = ADAPTERS["vllm"](parse_body(body.encode(), "text/plain"))
    lora = {s.labels["state"]: s.value for s in derived if s.name == "infersight_engine_lora_adapters"}
    assert lora == {"running": 2.0, "waiting": 0.0}  # the newest series


def test_sglang_tgi_mindie_series(testdata_dir: Path) -> None:
    sglang = ADAPTERS["sglang"](
        _scrape(testdata_dir, "sglang/sglang_docs_production_metrics_llama31-8b.prom")
    )
    assert _one(sglang, "infersight_engine_kv_cache_usage_ratio").value == 0.28
    assert _one(sglang, "infersight_engine_prompt_tokens_total").value > 0
    tgi = ADAPTERS["tgi"](_scrape(testdata_dir, "tgi/tgi_metrics_trimmed.prom"))
    assert _one(tgi, "infersight_engine_queue_time_ms_sum").value == pytest.approx(295275.961956)
    assert _one(tgi, "infersight_engine_queue_time_ms_count").value == 109
    mindie = ADAPTERS["mindie"](_scrape(testdata_dir, "mindie/mindie_ms_metricsSingleNodeData_0.prom"))
    assert _one(mindie, "infersight_engine_kv_cache_usage_ratio").value == 0.1
    assert _one(mindie, "infersight_engine_preemptions_total").value == 1274
    assert _one(mindie, "infersight_engine_prompt_tokens_total").value == 78800


def test_llamacpp_prefix_cache_from_processed_and_cached_tokens(testdata_dir: Path) -> None:
    derived = ADAPTERS["llamacpp"](_scrape(testdata_dir, "llamacpp/metrics.txt"))
    assert _one(derived, "infersight_engine_prompt_tokens_total").value == 38
    assert _one(derived, "infersight_engine_prefix_cache_hits_total").value == 33
    assert _one(derived, "infersight_engine_prefix_cache_queries_total").value == 38 + 33
    # an older llama.cpp without the cached counter: no queries figure that would claim no hits
    older = "llamacpp:prompt_tokens_total 38\n"
    assert not [
        s for s in ADAPTERS["llamacpp"](parse_body(older.encode(), "text/plain")) if "prefix" in s.name
    ]


def _advanced(exposition: str, seconds: float, tokens: float, prompt_s: float, prompt_tokens: float) -> str:
    """The captured llama.cpp exposition with its time and token counters moved on."""
    moves = {
        "llamacpp:tokens_predicted_seconds_total": seconds,
        "llamacpp:tokens_predicted_total": tokens,
        "llamacpp:prompt_seconds_total": prompt_s,
        "llamacpp:prompt_tokens_total": prompt_tokens,
    }

    def move(m: re.Match[str]) -> str:
        return f"{m.group(1)} {float(m.group(2)) + moves[m.group(1)]!r}"

    pattern = r"^(" + "|".join(re.escape(n) for n in moves) + r") (\S+)$"
    return re.sub(pattern, move, exposition, flags=re.M)


def test_llamacpp_ms_per_token_per_interval_through_the_store_and_api(
    http_stub: Any, canned: Any, testdata_dir: Path, chdb_store: Store
) -> None:
    text = (testdata_dir / CAPTURED / "llamacpp/metrics.txt").read_text()
    bodies = [
        text,
        _advanced(text, 0.5, 100, 0.02, 40),  # 5 ms per output token, 0.5 ms per prompt token
        _advanced(text, 0.5, 100, 0.02, 40),  # no tokens in this interval: no figure
    ]
    t0 = 1_765_000_000

    async def go() -> None:
        async with http_stub({}) as server:
            target = TargetConfig(
                host="127.0.0.1",
                port=server.port,
                engine="llamacpp",
                allowed_ports=(server.port,),
                source="p0",
            )
            clock = iter(float(t0 + 10 * i) for i in range(10))
            sidecar = Sidecar(ScrapeConfig(), target, ListConsumer(), clock=lambda: next(clock))
            for body in bodies:
                server.routes["/metrics"] = canned(body.encode())
                chdb_store.writer.write(await sidecar.scrape_once())
            await sidecar.stop()

    asyncio.run(go())
    api = TestClient(create_app(chdb_store))

    def at(query: str, time_s: int) -> list[float]:
        result = api.get("/api/v1/query", params={"query": query, "time": time_s}).json()["data"]["result"]
        return [float(r["value"][1]) for r in result]

    assert at("infersight_engine_decode_ms_per_token", t0 + 10) == [pytest.approx(5.0)]
    assert at("infersight_engine_prefill_ms_per_token", t0 + 10) == [pytest.approx(0.5)]
    assert at("infersight_engine_decode_ms_per_token", t0 + 5) == []  # one scrape: no interval yet
    # the third interval made no token: the series is marked stale, no echo of 5 ms
    assert at("infersight_engine_decode_ms_per_token", t0 + 25) == []


# Built from Dynamo's source, not captured: names and labels of lib/llm/src/http/service/metrics.rs
# (prefix dynamo_frontend, label values of Endpoint::as_str and the success/error status), values ours.
DYNAMO_FRONTEND = """\
# TYPE dynamo_frontend_requests_total counter
dynamo_frontend_requests_total{endpoint="completions",model="qwen",request_type="stream",status="success"} 40
dynamo_frontend_requests_total{endpoint="completions",model="qwen",request_type="stream",status="error"} 2
# TYPE dynamo_frontend_inflight_requests gauge
dynamo_frontend_inflight_requests{model="qwen"} 3
# TYPE dynamo_frontend_queued_requests gauge
dynamo_frontend_queued_requests{model="qwen"} 1
# TYPE dynamo_frontend_output_tokens_total counter
dynamo_frontend_output_tokens_total{model="qwen"} 4200
# TYPE dynamo_frontend_time_to_first_token_seconds histogram
dynamo_frontend_time_to_first_token_seconds_bucket{model="qwen",le="0.1"} 30
dynamo_frontend_time_to_first_token_seconds_bucket{model="qwen",le="1"} 40
dynamo_frontend_time_to_first_token_seconds_bucket{model="qwen",le="+Inf"} 40
dynamo_frontend_time_to_first_token_seconds_sum{model="qwen"} 3.5
dynamo_frontend_time_to_first_token_seconds_count{model="qwen"} 40
# TYPE dynamo_frontend_input_sequence_tokens histogram
dynamo_frontend_input_sequence_tokens_bucket{model="qwen",le="+Inf"} 40
dynamo_frontend_input_sequence_tokens_sum{model="qwen"} 8000
dynamo_frontend_input_sequence_tokens_count{model="qwen"} 40
# TYPE dynamo_frontend_cached_tokens histogram
dynamo_frontend_cached_tokens_bucket{model="qwen",le="+Inf"} 40
dynamo_frontend_cached_tokens_sum{model="qwen"} 2000
dynamo_frontend_cached_tokens_count{model="qwen"} 40
"""


def test_dynamo_frontend() -> None:
    derived = adapt("dynamo", parse_body(DYNAMO_FRONTEND.encode(), "text/plain"))
    assert derived.dropped == ()
    out = derived.samples
    ok = _one(out, "infer_service_request_total", code="2xx")
    assert (ok.value, ok.labels["path"], ok.labels["model"]) == (40, "completions", "qwen")
    assert _one(out, "infer_service_request_total", code="5xx").value == 2
    assert _one(out, "infer_service_request_connect_count").value == 3  # queued are among the in-flight
    assert _one(out, "infer_service_token_count").value == 4200
    assert _one(out, "infer_service_first_token_cost_sum").value == pytest.approx(3500.0)
    assert _one(out, "infer_service_first_token_cost_bucket", le="100.0").value == 30
    assert _one(out, "infer_service_input_token_quantity_sum").value == 8000
    assert _one(out, "infersight_engine_prefix_cache_queries_total").value == 8000
    assert _one(out, "infersight_engine_prefix_cache_hits_total").value == 2000
