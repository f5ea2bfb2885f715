"""Service-level rules: TTFT and TPOT TP99, 5xx ratio, traffic stopped while connections wait."""

from __future__ import annotations

from alerts.packs.spec import SERVICE_KEYS, InputSeries, RuleSpec, Scenario, constant, keep, matchers
from alerts.thresholds import Thresholds

BY = "project_id, service_id"
Q = 0.99


def _tp99(histogram: str, sel: str, threshold: float) -> str:
    return (
        f"histogram_quantile({Q}, sum by ({BY}, le) (rate({histogram}_bucket{matchers(sel)}[5m])))"
        f" > {threshold:g}"
    )


def _histogram_scenario(
    histogram: str, threshold: float, bad: dict[str, str], good: dict[str, str]
) -> Scenario:
    # bad: every observation in (T, 4T] -> TP99 = T + 3T * 0.99; good: all in (0, T/2]
    bounds = (threshold / 2, threshold, 4 * threshold)
    series = []
    for labels, bucket in ((bad, 2), (good, 0)):
        for i, le in enumerate((*(f"{b:g}" for b in bounds), "+Inf")):
            step = 10 if i >= bucket else 0
            series.append(InputSeries(f"{histogram}_bucket", {**labels, "le": le}, f"0+{step}x60"))
    return Scenario(tuple(series), 1, constant(threshold + 3 * threshold * Q), keep(bad, SERVICE_KEYS))


def _ttft_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    return _histogram_scenario("infer_service_first_token_cost", t.ttft_tp99_ms, bad, good)


def _tpot_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    return _histogram_scenario("infer_service_per_token_cost", t.tpot_tp99_ms, bad, good)


def _error_ratio_expr(sel: str, t: Thresholds) -> str:
    total = f"infer_service_request_total{matchers(sel)}"
    code_5xx = 'code=~"5.."'
    errors = f"infer_service_request_total{matchers(sel, code_5xx)}"
    return f"sum by ({BY}) (rate({errors}[5m])) / sum by ({BY}) (rate({total}[5m])) > {t.error_ratio:g}"


def _error_ratio_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    errors = min(100.0, 200 * t.error_ratio)
    name = "infer_service_request_total"
    series = (
        InputSeries(
            name,
            {**bad, "code": "2xx", "method": "POST", "path": "/v1/completions"},
            f"0+{100 - errors:g}x60",
        ),
        InputSeries(
            name, {**bad, "code": "5xx", "method": "POST", "path": "/v1/completions"}, f"0+{errors:g}x60"
        ),
        InputSeries(name, {**good, "code": "2xx", "method": "POST", "path": "/v1/completions"}, "0+100x60"),
        InputSeries(name, {**good, "code": "5xx", "method": "POST", "path": "/v1/completions"}, "0+0x60"),
    )
    return Scenario(series, 1, constant(errors / 100), keep(bad, SERVICE_KEYS))


def _qps_zero_expr(sel: str, t: Thresholds) -> str:
    del t
    return (
        f"sum by ({BY}) (rate(infer_service_request_total{matchers(sel)}[5m])) == 0"
        f" and on ({BY}) sum by ({BY}) (infer_service_request_connect_count{matchers(sel)}) > 0"
    )


def _qps_zero_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    del t
    request = {"code": "2xx", "method": "POST", "path": "/v1/completions"}
    series = (
        InputSeries("infer_service_request_total", {**bad, **request}, "100+0x60"),
        InputSeries("infer_service_request_connect_count", bad, "3+0x60"),
        InputSeries("infer_service_request_total", {**good, **request}, "0+10x60"),
        InputSeries("infer_service_request_connect_count", good, "3+0x60"),
    )
    return Scenario(series, 1, constant(0.0), keep(bad, SERVICE_KEYS))


SERVICE = (
    RuleSpec(
        "InferServiceTTFTHigh",
        "warning",
        lambda sel, t: _tp99("infer_service_first_token_cost", sel, t.ttft_tp99_ms),
        "latency_for",
        "TTFT TP99 of service {{ $labels.service_id }} above %(ttft_tp99_ms)g ms",
        "99%% of requests of service {{ $labels.service_id }} (project {{ $labels.project_id }}) got their "
        "first token within {{ $value | humanize }} ms over the last 5 minutes; the threshold is "
        "%(ttft_tp99_ms)g ms.",
        "TTFT is the duration from when a request is initiated until the first token is returned. Check "
        "Time to First Token and Connections on the service's Monitoring tab; queued requests "
        "(vllm:num_requests_waiting) mean the service needs more instances.",
        _ttft_scenario,
    ),
    RuleSpec(
        "InferServiceTPOTHigh",
        "warning",
        lambda sel, t: _tp99("infer_service_per_token_cost", sel, t.tpot_tp99_ms),
        "latency_for",
        "Post-first-token latency TP99 of service {{ $labels.service_id }} above %(tpot_tp99_ms)g ms",
        "The TP99 latency of each output token after the first of service {{ $labels.service_id }} is "
        "{{ $value | humanize }} ms over the last 5 minutes; the threshold is %(tpot_tp99_ms)g ms.",
        "TPOT is the generation latency of each subsequent token. Check Post-First-Token Latency and NPU/GPU "
        "usage on the Monitoring tab: saturated accelerators or long batches slow every token.",
        _tpot_scenario,
    ),
    RuleSpec(
        "InferService5xxRatioHigh",
        "critical",
        _error_ratio_expr,
        "errors_for",
        "Service {{ $labels.service_id }} answers {{ $value | humanizePercentage }} of requests with 5xx",
        "{{ $value | humanizePercentage }} of the calls of service {{ $labels.service_id }} returned 5xx "
        "over the last 5 minutes (threshold %(error_ratio)g).",
        "Service Requests on the Monitoring tab splits calls by return code (2xx, 4xx, 5xx); check the "
        "service's logs and events for the failing requests.",
        _error_ratio_scenario,
    ),
    RuleSpec(
        "InferServiceQPSZeroWithConnections",
        "critical",
        _qps_zero_expr,
        "traffic_for",
        "Service {{ $labels.service_id }} completes no request while connections are open",
        "Service {{ $labels.service_id }} served 0 requests per second over 5 minutes while it holds "
        "open connections: requests are stuck.",
        "Connections counts requests in the connection setup state; with QPS at 0 the engine is hung. Check "
        "the pod's health checks and restart the instance.",
        _qps_zero_scenario,
    ),
)
