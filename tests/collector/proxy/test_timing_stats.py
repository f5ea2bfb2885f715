"""Pure cores: chunk times → TTFT/TPOT, and observations → the guide's series."""

from __future__ import annotations

import pytest

from collector import catalog
from collector.proxy.observe import feed_observer
from collector.proxy.sse import Usage
from collector.proxy.stats import ProxyStats
from collector.proxy.timing import RequestObservation, StreamTimer, observe_request
from model.series import Sample


def test_timer_ttft_and_gaps() -> None:
    timer = StreamTimer(start_s=1.0)
    timer.content(1.2)
    timer.content(1.25)
    timer.content(1.35, steps=2)  # two tokens coalesced into one read: two equal gaps
    assert timer.ttft_s == pytest.approx(0.2)
    assert timer.gaps_s == pytest.approx([0.05, 0.05, 0.05])
    assert timer.steps == 4


def test_observation_prefers_usage_and_counts_otherwise() -> None:
    timer = StreamTimer(start_s=0.0)
    timer.content(0.1)
    timer.content(0.2)
    counted = observe_request(ts_s=5, start_s=0, end_s=0.3, method="POST", path="/v1/x", status=200,
                              timer=timer, usage=None)  # fmt: skip
    assert (counted.output_tokens, counted.input_tokens) == (2, None)
    assert counted.ttft_ms == pytest.approx(100)
    assert counted.cost_ms == pytest.approx(300)
    assert counted.token_latency_ms == pytest.approx((100, 100))
    reported = observe_request(ts_s=5, start_s=0, end_s=0.3, method="POST", path="/v1/x", status=200,
                               timer=timer, usage=Usage(7, 3))  # fmt: skip
    assert (reported.output_tokens, reported.input_tokens) == (3, 7)


def _values(samples: list[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple((k, v) for k, v in s.labels if k != "__name__"): s.value for s in samples if s.name == name}


def _obs(status: int = 200, **kw: object) -> RequestObservation:
    base: dict[str, object] = {"ts_s": 0.0, "method": "POST", "path": "/v1/chat/completions"}
    base.update(status=status, cost_ms=120.0)
    return RequestObservation(**{**base, **kw})  # type: ignore[arg-type]


def test_stats_counts_histograms_and_period_gauges() -> None:
    stats = ProxyStats({"service_id": "svc"})
    stats.observe(_obs(ttft_ms=40.0, per_token_ms=(10.0, 20.0), input_tokens=5, output_tokens=3))
    stats.observe(_obs(ttft_ms=60.0, per_token_ms=(30.0,), output_tokens=2))
    stats.observe(_obs(status=503, path="/v1/chat/completions?x=1"))
    samples = stats.to_samples(ts_ms=1000, connections=2)
    totals = _values(samples, "infer_service_request_total")
    assert (
        totals[(("code", "2xx"), ("method", "POST"), ("path", "/v1/chat/completions"), ("service_id", "svc"))]
        == 2
    )
    assert (
        totals[(("code", "5xx"), ("method", "POST"), ("path", "/v1/chat/completions"), ("service_id", "svc"))]
        == 1
    )
    exact = _values(samples, "infersight_proxy_requests_total")
    assert any(dict(k)["status"] == "503" for k in exact)
    assert _values(samples, "infer_service_first_token_cost_count") == {(("service_id", "svc"),): 2}
    assert _values(samples, "infer_service_first_token_cost_sum") == {(("service_id", "svc"),): 100.0}
    buckets = _values(samples, "infer_service_first_token_cost_bucket")
    assert buckets[(("le", "50.0"), ("service_id", "svc"))] == 1
    assert buckets[(("le", "+Inf"), ("service_id", "svc"))] == 2
    assert _values(samples, "infer_service_per_token_cost_count") == {(("service_id", "svc"),): 3}
    assert _values(samples, "infer_service_first_token_avg_cost") == {(("service_id", "svc"),): 50.0}
    assert _values(samples, "infer_service_per_token_min_cost") == {(("service_id", "svc"),): 10.0}
    assert _values(samples, "infer_service_token_latency_max_cost") == {(("service_id", "svc"),): 60.0}
    assert _values(samples, "infer_service_request_connect_count") == {(("service_id", "svc"),): 2}
    assert _values(samples, "infer_service_token_count") == {(("service_id", "svc"),): 5}
    # the next period has no observations: no avg/min/max sample rather than a false 0
    later = stats.to_samples(ts_ms=11_000, connections=0)
    assert not _values(later, "infer_service_first_token_avg_cost")
    assert _values(later, "infer_service_first_token_cost_count") == {(("service_id", "svc"),): 2}


def test_path_cardinality_is_capped() -> None:
    stats = ProxyStats({}, max_paths=2)
    for i in range(5):
        stats.observe(_obs(status=404, path=f"/scan/{i}"))
    paths = {dict(k)["path"] for k in _values(stats.to_samples(0, 0), "infer_service_request_total")}
    assert paths == {"/scan/0", "/scan/1", "other"}


class _Sketches:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], tuple[float, ...], float]] = []

    def observe(self, metric: str, labels: dict[str, str], values: object, ts_s: float) -> None:
        flat = tuple(float(v) for v in values) if hasattr(values, "__len__") else (float(values),)  # type: ignore[arg-type]
        self.calls.append((metric, labels, flat, ts_s))


def test_feed_observer_hands_every_histogram_its_values() -> None:
    sketches = _Sketches()
    on_request = feed_observer(sketches, {"service_id": "svc"})
    on_request(_obs(ts_s=9.0, ttft_ms=40.0, per_token_ms=(10.0, 20.0), input_tokens=5, output_tokens=3))
    metrics = {c[0]: c[2] for c in sketches.calls}
    assert metrics == {
        "infer_service_request_cost": (120.0,),
        "infer_service_first_token_cost": (40.0,),
        "infer_service_per_token_cost": (10.0, 20.0),
        "infer_service_input_token_quantity": (5.0,),
        "infer_service_output_token_quantity": (3.0,),
    }
    assert all(c[3] == 9.0 and c[1] == {"service_id": "svc"} for c in sketches.calls)


@pytest.mark.parametrize(
    ("status", "outcome", "error"),
    [
        (200, "ok", None),
        (304, "ok", None),
        (429, "ok", "429"),
        (503, "ok", "503"),
        (200, "upstream_reset", "upstream_reset"),
        (502, "upstream_refused", "upstream_refused"),
        (200, "client_disconnect", "client_disconnect"),
    ],
)
def test_a_failed_requests_values_carry_its_error_type(status: int, outcome: str, error: str | None) -> None:
    sketches = _Sketches()
    on_request = feed_observer(sketches, {"service_id": "svc"})
    obs = _obs(status, ts_s=9.0, ttft_ms=40.0, output_tokens=3, outcome=outcome)
    assert obs.error_type == error
    on_request(obs)
    want = {"service_id": "svc"} if error is None else {"service_id": "svc", catalog.ERROR_TYPE: error}
    assert {c[0] for c in sketches.calls} >= {catalog.REQUEST_COST, catalog.FIRST_TOKEN_COST}
    assert all(c[1] == want for c in sketches.calls)
    on_request(_obs(ts_s=9.0))  # the identity the next request sees is untouched
    assert sketches.calls[-1][1] == {"service_id": "svc"}


def test_feed_observer_drives_the_windowed_sketches() -> None:
    window = pytest.importorskip("collector.window")  # the sketch keeper
    sketches = window.WindowedSketches()
    on_request = feed_observer(sketches, {"service_id": "svc"})
    on_request(_obs(ts_s=9.0, ttft_ms=40.0, per_token_ms=(10.0, 20.0), input_tokens=5, output_tokens=3))
