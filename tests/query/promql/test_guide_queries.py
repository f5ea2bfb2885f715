"""The guide's own PromQL statements, verbatim, on generated data with answers worked out by hand."""

from __future__ import annotations

import pytest

from query.promql.engine import Engine
from query.promql.value import Matrix, Vector
from store.memory import MemoryStore

SERVICE = "6d26f238-52b0-4184-8b50-d621a0c80eb4"
TP90 = (
    "histogram_quantile(0.90, avg(rate(infer_service_request_cost_bucket"
    '{service_id="6d26f238-52b0-4184-8b50-d621a0c80eb4"}[1m:30s]))by(le))'
)
TTFT_AVG = (
    'sum(increase(infer_service_first_token_cost_sum{service_id="x"}[59999ms]))by(service_id)'
    '/sum(increase(infer_service_first_token_cost_count{service_id="x"}[59999ms]))by(service_id)'
)
# Per 10 s scrape, cumulative bucket increments of two pods (20 requests each).
POD_BUCKETS = {
    "pod-a": {"0.1": 4, "0.5": 10, "1": 19, "+Inf": 20},
    "pod-b": {"0.1": 2, "0.5": 8, "1": 19, "+Inf": 20},
}
# avg by (le) of the per-second rates: 0.3, 0.9, 1.9, 2.0; rank 0.9 * 2.0 = 1.8 falls in (0.5, 1]:
# 0.5 + (1 - 0.5) * (1.8 - 0.9) / (1.9 - 0.9) = 0.95.
EXPECTED_TP90 = 0.95


def _histogram_store(minutes: int = 20) -> MemoryStore:
    store = MemoryStore()
    for pod, buckets in POD_BUCKETS.items():
        for le, per_scrape in buckets.items():
            labels = {
                "__name__": "infer_service_request_cost_bucket",
                "service_id": SERVICE,
                "pod": pod,
                "le": le,
            }
            for i in range(minutes * 6 + 1):
                store.append(labels, i * 10_000, float(per_scrape * i))
    # A different service must not leak in.
    other = {"__name__": "infer_service_request_cost_bucket", "service_id": "other", "pod": "p", "le": "+Inf"}
    for i in range(minutes * 6 + 1):
        store.append(other, i * 10_000, float(1000 * i))
    return store


def _ttft_store(minutes: int = 20) -> MemoryStore:
    store = MemoryStore()
    # pod-a: 5 requests per 10 s at 0.25 s each; pod-b: 15 requests per 10 s at 0.5 s each.
    for pod, count, mean in (("pod-a", 5, 0.25), ("pod-b", 15, 0.5)):
        base = {"service_id": "x", "pod": pod}
        for i in range(minutes * 6 + 1):
            store.append(
                {**base, "__name__": "infer_service_first_token_cost_count"}, i * 10_000, float(count * i)
            )
            store.append(
                {**base, "__name__": "infer_service_first_token_cost_sum"}, i * 10_000, count * mean * i
            )
    return store


def test_tp90_instant_matches_hand_computed_quantile() -> None:
    result = Engine(_histogram_store()).instant(TP90, 600_000)
    assert isinstance(result, Vector)
    assert len(result.samples) == 1
    assert result.samples[0].labels == {}
    assert result.samples[0].value == pytest.approx(EXPECTED_TP90, rel=1e-9)


def test_tp90_range_is_constant_for_steady_traffic() -> None:
    result = Engine(_histogram_store()).range(TP90, 300_000, 1_200_000, 15_000)
    assert isinstance(result, Matrix)
    assert len(result.series) == 1
    series = result.series[0]
    assert len(series.ts_ms) == (1_200_000 - 300_000) // 15_000 + 1
    assert series.values == pytest.approx([EXPECTED_TP90] * len(series.values), rel=1e-9)


def test_tp90_is_empty_for_unknown_service() -> None:
    engine = Engine(_histogram_store())
    result = engine.instant(TP90.replace(SERVICE, "nope"), 600_000)
    assert isinstance(result, Vector)
    assert result.samples == []


def test_ttft_average_over_last_minute() -> None:
    # (5 * 0.25 + 15 * 0.5) / (5 + 15) = 8.75 / 20; extrapolation scales both sides alike.
    result = Engine(_ttft_store()).instant(TTFT_AVG, 600_000)
    assert isinstance(result, Vector)
    assert [s.labels for s in result.samples] == [{"service_id": "x"}]
    assert result.samples[0].value == pytest.approx(0.4375, rel=1e-12)


def test_ttft_increase_value_uses_prometheus_extrapolation() -> None:
    # 6 samples 10 s apart in [t - 59.999 s, t]: sampled 50 s, extrapolated by 9.999 s at the start.
    result = Engine(_ttft_store()).instant(
        'sum(increase(infer_service_first_token_cost_count{service_id="x"}[59999ms]))by(service_id)', 600_000
    )
    assert isinstance(result, Vector)
    assert result.samples[0].value == pytest.approx(20 * 5 * 59.999 / 50, rel=1e-12)


def test_ttft_average_range_query() -> None:
    result = Engine(_ttft_store()).range(TTFT_AVG, 120_000, 1_200_000, 60_000)
    assert isinstance(result, Matrix)
    assert [s.labels for s in result.series] == [{"service_id": "x"}]
    assert result.series[0].values == pytest.approx([0.4375] * 19, rel=1e-12)
