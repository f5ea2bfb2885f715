"""Engine adapters against each engine's real exposition (captured files, sources in their SOURCE.md)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.engines import ADAPTERS, ALL_FAMILIES, CHECKED_ADAPTERS, Derived, adapt, mindie
from collector.engines.dynamo import DYNAMO
from collector.engines.llamacpp import LLAMACPP
from collector.engines.mindie import MINDIE
from collector.engines.sglang import SGLANG
from collector.engines.tgi import TGI
from collector.engines.vllm import VLLM
from collector.parse import ParsedSample, parse_body

MAPS = {"vllm": VLLM, "sglang": SGLANG, "tgi": TGI, "llamacpp": LLAMACPP, "mindie": MINDIE, "dynamo": DYNAMO}


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
        assert all(s.name.startswith(("infer_service_", "infersight_engine_")) for s in derived), engine


# --- weird but parsable input: adapters map it or drop the family, and never raise ---------------

TTFT = "vllm:time_to_first_token_seconds"


def _histogram(name: str, bounds: list[str]) -> str:
    lines = [f"# TYPE {name} histogram", *(f'{name}_bucket{{le="{le}"}} 1' for le in bounds)]
    return "\n".join([*lines, f"{name}_sum 2", f"{name}_count 1"])


def _adapt(engine: str, text: str) -> Derived:
    return adapt(engine, parse_body(text.encode(), "text/plain"))


@pytest.mark.parametrize(
    ("bounds", "why"),
    [
        (["0.1", "abc", "+Inf"], "is not a number"),
        (["0.1", "NaN", "+Inf"], "is not a number"),
        (["0.1", " 1", "+Inf"], "is not a number"),
        (["0.1", "1_0", "+Inf"], "is not a number"),
        (["0.1", "1"], 'no le="+Inf"'),
        (["1", "1.0", "+Inf"], "two buckets"),
        (["0.1", "0.10000000000001", "+Inf"], "two buckets"),  # one bound after scaling to ms
        (["1e308", "+Inf"], "two buckets"),  # 1e308 s is +Inf ms
    ],
)
def test_an_invalid_histogram_family_is_dropped_with_a_reason(bounds: list[str], why: str) -> None:
    other = _histogram("vllm:e2e_request_latency_seconds", ["1", "+Inf"])
    derived = _adapt("vllm", _histogram(TTFT, bounds) + "\n" + other + "\n")
    assert [(d.family, why in d.reason) for d in derived.dropped] == [(TTFT, True)]
    names = {s.name for s in derived.samples}
    assert not any(n.startswith("infer_service_first_token_cost") for n in names)
    assert "infer_service_request_cost_bucket" in names  # the other families are still mapped


def test_a_bucket_without_le_drops_its_family() -> None:
    text = _histogram(TTFT, ["+Inf"]) + f"\n{TTFT}_bucket 3\n"
    assert [d.family for d in _adapt("vllm", text).dropped] == [TTFT]


def test_the_le_abc_regression_keeps_the_scrape() -> None:
    # was: ValueError out of scale_le, and the whole scrape lost
    text = f'# TYPE {TTFT} histogram\n{TTFT}_bucket{{le="abc"}} 1\n{TTFT}_count 1\n{TTFT}_sum 1\n'
    for engine in ADAPTERS:
        derived = _adapt(engine, text.replace(TTFT, f"{engine}_weird") if engine != "vllm" else text)
        assert isinstance(derived.samples, list)
    assert _adapt("vllm", text).dropped[0].reason == "bucket bound le='abc' is not a number"


def test_special_values_are_mapped_not_dropped() -> None:
    text = "\n".join(
        [
            f"# TYPE {TTFT} histogram",
            f'{TTFT}_bucket{{le="0.5"}} NaN',
            f'{TTFT}_bucket{{le="+Inf"}} -3',  # negative and decreasing counts pass through
            f"{TTFT}_sum 1e308",
            f"{TTFT}_count +Inf",
            "# TYPE vllm:generation_tokens_total counter",
            "vllm:generation_tokens_total NaN",
            "vllm:num_requests_running +Inf",
            "vllm:num_requests_waiting -Inf",
            "",
        ]
    )
    derived = _adapt("vllm", text)
    assert derived.dropped == ()
    by = _by_name(derived.samples)
    assert math.isnan(by["infer_service_first_token_cost_bucket"][0].value)
    assert [s.labels["le"] for s in by["infer_service_first_token_cost_bucket"]] == ["500.0", "+Inf"]
    assert by["infer_service_first_token_cost_sum"][0].value == math.inf  # 1e308 s in ms
    assert math.isnan(by["infer_service_token_count"][0].value)
    assert math.isnan(by["infer_service_request_connect_count"][0].value)  # +Inf + -Inf


def test_an_invalid_successor_falls_back_to_the_older_name() -> None:
    new = _histogram("vllm:time_per_output_token_seconds", ["abc", "+Inf"])
    old = _histogram("vllm:inter_token_latency_seconds", ["0.1", "+Inf"])
    derived = _adapt("vllm", new + "\n" + old + "\n")
    assert [d.family for d in derived.dropped] == ["vllm:time_per_output_token_seconds"]
    bounds = [s.labels["le"] for s in derived.samples if s.name == "infer_service_per_token_cost_bucket"]
    assert bounds == ["100.0", "+Inf"]


def test_summary_with_bad_quantiles_is_kept_as_is(testdata_dir: Path) -> None:
    text = f'# TYPE {TTFT} summary\n{TTFT}{{quantile="x"}} 1\n{TTFT}_sum 1\n{TTFT}_count 1\n'
    derived = _adapt("vllm", text)
    assert derived.dropped == ()  # a summary has no buckets: its _sum/_count map, nothing to drop
    assert {s.name for s in derived.samples} == {
        "infer_service_first_token_cost_sum",
        "infer_service_first_token_cost_count",
    }


def test_an_adapter_bug_is_caught_at_the_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(samples: list[ParsedSample]) -> Derived:
        raise RuntimeError("bug")

    monkeypatch.setitem(CHECKED_ADAPTERS, "tgi", boom)
    derived = adapt("tgi", [])
    assert derived.samples == []
    assert [d.family for d in derived.dropped] == [ALL_FAMILIES]


def test_both_registries_name_the_same_engines() -> None:
    assert ADAPTERS.keys() == CHECKED_ADAPTERS.keys()


_NAMES = sorted(
    {
        name + suffix
        for m in MAPS.values()
        for name in [*m.histograms, *m.counters, *m.gauges, *m.connection_gauges]
        for suffix in (["_bucket", "_sum", "_count"] if name in m.histograms else [""])
    }
    | set(mindie.STATUS_COUNTERS)
    | {"tgi_request_success", "tgi_request_failure", "http_requests_total", "dynamo_frontend_requests_total"}
    | {"vllm:lora_requests_info", "llamacpp:prompt_tokens_cached_total"}
)
_TEXTS = st.one_of(
    st.sampled_from(["abc", "NaN", "+Inf", "-Inf", "", "1e400", "0.1", "1", "1.0", "2xx", "/v1/x"]),
    st.text(max_size=20),
)
_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.inf, -math.inf, math.nan, 1e308])
)
_SAMPLES = st.builds(
    lambda name, labels, value, ts: ParsedSample(name, labels, value, ts, name, "unknown"),
    st.sampled_from(_NAMES),
    st.dictionaries(
        st.sampled_from(
            [
                "le",
                "quantile",
                "err",
                "handler",
                "status",
                "method",
                "model",
                "endpoint",
                "running_lora_adapters",
            ]
        ),
        _TEXTS,
    ),
    _VALUES,
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
)


@settings(max_examples=300, deadline=None, database=None)
@given(engine=st.sampled_from(sorted(ADAPTERS)), samples=st.lists(_SAMPLES, max_size=40))
def test_adapters_never_raise_on_any_samples(engine: str, samples: list[ParsedSample]) -> None:
    derived = CHECKED_ADAPTERS[engine](samples)  # the table itself, not the catch-all boundary
    assert repr(ADAPTERS[engine](samples)) == repr(derived.samples)  # repr: NaN != NaN
    dropped = {d.family for d in derived.dropped}
    for s in derived.samples:
        assert s.name.startswith(("infer_service_", "infersight_engine_"))
        assert isinstance(s.value, float)
        if s.name.endswith("_bucket"):
            assert s.labels["le"] == "+Inf" or math.isfinite(float(s.labels["le"]))
    assert not dropped & {s.family for s in derived.samples}
