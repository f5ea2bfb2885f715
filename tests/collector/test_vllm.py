"""collector.engines.vllm: vLLM's series → the guide's, on the captured exposition and crafted text."""

from __future__ import annotations

import pytest

from collector import catalog
from collector.engines.le import scale_le
from collector.engines.vllm import derive
from collector.parse import ParsedSample, parse_text


def _by_name(samples: list[ParsedSample]) -> dict[str, list[ParsedSample]]:
    out: dict[str, list[ParsedSample]] = {}
    for s in samples:
        out.setdefault(s.name, []).append(s)
    return out


@pytest.mark.parametrize(
    ("le", "factor", "expected"),
    [
        ("0.001", 1000, "1.0"),
        ("0.04", 1000, "40.0"),
        ("0.07", 1000, "70.0"),  # 70.00000000000001 in floats
        ("0.3", 1000, "300.0"),
        ("2560.0", 1000, "2.56e+06"),  # as prometheus_client writes 2560000.0
        ("+Inf", 1000, "+Inf"),
        ("5.0", 1, "5.0"),
        ("1", 1, "1.0"),
    ],
)
def test_le_is_formatted_as_client_libraries_do(le: str, factor: float, expected: str) -> None:
    assert scale_le(le, factor) == expected


def test_captured_exposition_maps_every_guide_histogram(vllm_capture: str) -> None:
    derived = _by_name(derive(parse_text(vllm_capture, strict=False)))
    for histogram in catalog.HISTOGRAMS:
        for suffix in ("_bucket", "_sum", "_count"):
            assert histogram + suffix in derived, histogram + suffix
    [ttft_sum] = derived["infer_service_first_token_cost_sum"]
    assert ttft_sum.value == pytest.approx(313.26723098754883)
    assert ttft_sum.labels == {"model_name": "facebook/opt-125m"}
    [ttft_count] = derived["infer_service_first_token_cost_count"]
    assert ttft_count.value == 1.0
    les = [s.labels["le"] for s in derived["infer_service_first_token_cost_bucket"]]
    assert les[0] == "1.0"
    assert les[-1] == "+Inf"
    assert "40.0" in les
    [tokens] = derived["infer_service_token_count"]
    assert tokens.value == 7.0
    [input_sum] = derived["infer_service_input_token_quantity_sum"]
    assert input_sum.value == 5.0  # tokens are not rescaled


def test_tpot_is_not_double_counted(vllm_capture: str) -> None:
    # the capture has both time_per_output_token_seconds (count 6) and inter_token_latency_seconds (count 144)
    derived = _by_name(derive(parse_text(vllm_capture, strict=False)))
    [count] = derived["infer_service_per_token_cost_count"]
    assert count.value == 6.0


def test_inter_token_latency_is_used_when_alone() -> None:
    text = (
        "# TYPE vllm:inter_token_latency_seconds histogram\n"
        'vllm:inter_token_latency_seconds_bucket{engine="0",le="0.01",model_name="m"} 2\n'
        'vllm:inter_token_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 3\n'
        'vllm:inter_token_latency_seconds_sum{engine="0",model_name="m"} 0.05\n'
        'vllm:inter_token_latency_seconds_count{engine="0",model_name="m"} 3\n'
    )
    derived = _by_name(derive(parse_text(text, strict=False)))
    assert [s.labels["le"] for s in derived["infer_service_per_token_cost_bucket"]] == ["10.0", "+Inf"]
    assert derived["infer_service_per_token_cost_sum"][0].value == pytest.approx(50.0)


def test_connections_are_running_plus_waiting() -> None:
    text = (
        'vllm:num_requests_running{engine="0",model_name="m"} 3\n'
        'vllm:num_requests_waiting{engine="0",model_name="m"} 2\n'
        'vllm:num_requests_running{engine="1",model_name="m"} 1\n'
    )
    derived = derive(parse_text(text, strict=False))
    assert sorted((s.labels["engine"], s.value) for s in derived) == [("0", 5.0), ("1", 1.0)]
    assert {s.name for s in derived} == {catalog.REQUEST_CONNECT_COUNT}


def test_http_requests_map_to_request_total_for_inference_paths_only() -> None:
    text = (
        "# TYPE http_requests_total counter\n"
        'http_requests_total{handler="/v1/chat/completions",method="POST",status="2xx"} 10\n'
        'http_requests_total{handler="/v1/completions",method="POST",status="500"} 1\n'
        'http_requests_total{handler="/v1/models",method="GET",status="2xx"} 4\n'
        'http_requests_total{handler="/health",method="GET",status="2xx"} 9\n'
        'http_requests_total{handler="none",method="GET",status="4xx"} 2\n'
    )
    derived = derive(parse_text(text, strict=False))
    assert sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in derived) == [
        (
            "infer_service_request_total",
            (("code", "2xx"), ("method", "POST"), ("path", "/v1/chat/completions")),
            10.0,
        ),
        (
            "infer_service_request_total",
            (("code", "5xx"), ("method", "POST"), ("path", "/v1/completions")),
            1.0,
        ),
    ]


def test_created_samples_are_not_mapped() -> None:
    text = (
        "# TYPE vllm:generation_tokens counter\n"
        'vllm:generation_tokens_total{model_name="m"} 5\n'
        'vllm:generation_tokens_created{model_name="m"} 1.7e9\n'
        "# EOF\n"
    )
    derived = derive(parse_text(text, strict=True))
    assert [(s.name, s.value) for s in derived] == [("infer_service_token_count", 5.0)]


def test_own_timestamps_are_carried_over() -> None:
    text = 'vllm:generation_tokens_total{model_name="m"} 5 1700000000123\n'
    [derived] = derive(parse_text(text, strict=False))
    assert derived.ts_ms == 1700000000123
