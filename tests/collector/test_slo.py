"""SLO judgement: every target, error classes, scope; counters equal a direct count exactly."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.proxy.timing import RequestObservation
from collector.slo import OBJECTIVE, REQUESTS_TOTAL, TARGET_MISSES_TOTAL, SloCounter, applies, judge
from model.errors import ConfigError
from model.slo import Slo, slos_from_list

SLO = Slo("chat", "svc", ttft_ms=500, tpot_ms=50, cost_ms=10_000)


def obs(
    status: int = 200,
    cost_ms: float = 1000.0,
    ttft_ms: float | None = 100.0,
    gaps: tuple[float, ...] = (20.0, 30.0),
    outcome: str = "ok",
    path: str = "/v1/chat/completions",
) -> RequestObservation:
    return RequestObservation(
        ts_s=0.0, method="POST", path=path, status=status, cost_ms=cost_ms, streamed=ttft_ms is not None,
        ttft_ms=ttft_ms, per_token_ms=gaps, outcome=outcome,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "misses"),
    [
        (obs(), ()),
        (obs(ttft_ms=500.0), ()),  # at the target is good
        (obs(ttft_ms=500.1), ("ttft",)),
        (obs(gaps=(10.0, 100.0)), ("tpot",)),  # the request's mean gap, 55 ms
        (obs(gaps=(49.0, 51.0)), ()),  # mean 50 ms: one slow gap alone is no miss
        (obs(gaps=()), ()),  # fewer than two tokens: TPOT not judged
        (obs(cost_ms=20_000.0, ttft_ms=900.0, gaps=(80.0,)), ("ttft", "tpot", "cost")),
        (obs(ttft_ms=None, cost_ms=400.0, gaps=()), ()),  # not streamed: TTFT is the whole response
        (obs(ttft_ms=None, cost_ms=600.0, gaps=()), ("ttft",)),
        (obs(status=500, ttft_ms=None), ("error",)),
        (obs(status=200, outcome="upstream_reset"), ("error",)),
    ],
)
def test_judge_names_every_missed_target(request_: RequestObservation, misses: tuple[str, ...]) -> None:
    verdict = judge(SLO, request_)
    assert verdict is not None
    assert verdict.misses == misses
    assert verdict.good == (not misses)


def test_errors_outside_the_bad_classes_are_left_out() -> None:
    assert judge(SLO, obs(status=429, ttft_ms=None)) is None
    assert judge(SLO, obs(status=404, ttft_ms=None)) is None
    strict = Slo("strict", "svc", ttft_ms=500, bad_errors=("429", "4xx", "client_disconnect"))
    assert judge(strict, obs(status=429)).misses == ("error",)  # type: ignore[union-attr]
    assert judge(strict, obs(status=404)).misses == ("error",)  # type: ignore[union-attr]
    assert judge(strict, obs(outcome="client_disconnect")).misses == ("error",)  # type: ignore[union-attr]
    assert judge(strict, obs(status=503)) is None  # 5xx not listed: left out


def test_scope_by_service_route_and_model() -> None:
    routed = Slo("r", "svc", route="/v1/chat", ttft_ms=1)
    assert applies(routed, "svc", "/v1/chat/completions?x=1")
    assert not applies(routed, "svc", "/v1/completions")
    assert not applies(routed, "other", "/v1/chat/completions")
    modelled = Slo("m", "svc", model="llama", ttft_ms=1)
    assert not applies(modelled, "svc", "/v1/chat/completions")  # the proxy does not know the model
    assert applies(modelled, "svc", "/v1/chat/completions", model="llama")


def test_counter_series_carry_identity_and_start_at_zero() -> None:
    counter = SloCounter(
        lambda: (SLO, Slo("other-service", "svc-2", ttft_ms=1)), {"service_id": "svc", "role": "decode"}
    )
    samples = {
        (s.name, dict(s.labels).get("result") or dict(s.labels).get("target", "")): s
        for s in counter.to_samples(5)
    }
    assert set(samples) == {
        (OBJECTIVE, ""), (REQUESTS_TOTAL, "good"), (REQUESTS_TOTAL, "bad"),
        *((TARGET_MISSES_TOTAL, t) for t in ("ttft", "tpot", "cost", "error")),
    }  # fmt: skip
    assert all(s.value == 0 for k, s in samples.items() if k[0] != OBJECTIVE)
    assert samples[(OBJECTIVE, "")].value == 0.99
    assert all(
        dict(s.labels)["role"] == "decode" and dict(s.labels)["slo"] == "chat" for s in samples.values()
    )


latencies = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([200, 200, 200, 429, 500]), latencies, st.one_of(st.none(), latencies),
            st.lists(st.floats(min_value=0.0, max_value=200.0), max_size=5),
        ),
        max_size=60,
    )
)  # fmt: skip
def test_counts_equal_a_direct_count(requests: list[tuple[int, float, float | None, list[float]]]) -> None:
    """Attainment is exact: the counters equal a count made straight from the definitions."""
    counter = SloCounter(lambda: (SLO,), {"service_id": "svc"})
    good = bad = ttft_misses = 0
    for status, cost, ttft, gaps in requests:
        counter.observe(obs(status=status, cost_ms=cost, ttft_ms=ttft, gaps=tuple(gaps)))
        if status == 429:
            continue
        seen_ttft = cost if ttft is None else ttft
        mean_gap = sum(gaps) / len(gaps) if gaps else 0.0
        missed = status == 500 or seen_ttft > 500 or mean_gap > 50 or cost > 10_000
        good, bad = good + (not missed), bad + missed
        ttft_misses += status != 500 and seen_ttft > 500
    assert counter.requests.get(("chat", "good"), 0) == good
    assert counter.requests.get(("chat", "bad"), 0) == bad
    assert counter.misses.get(("chat", "ttft"), 0) == ttft_misses


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ({"service_id": "svc", "ttft_ms": 1}, "slos[0].name"),
        ({"name": "a", "ttft_ms": 1}, "slos[0].service_id"),
        ({"name": "a", "service_id": "s", "ttft_ms": -1}, "slos[0].ttft_ms"),
        ({"name": "a", "service_id": "s", "ttft_ms": "fast"}, "slos[0].ttft_ms"),
        ({"name": "a", "service_id": "s", "ttft_ms": 1, "objective": 1.0}, "slos[0].objective"),
        ({"name": "a", "service_id": "s", "ttft_ms": 1, "period": "5m"}, "slos[0].period"),
        ({"name": "a", "service_id": "s", "ttft_ms": 1, "bad_errors": ["6xx"]}, "slos[0].bad_errors"),
        ({"name": "a", "service_id": "s", "ttft_ms": 1, "route": "v1"}, "slos[0].route"),
        ({"name": "a b", "service_id": "s", "ttft_ms": 1}, "slos[0].name"),
        ({"name": "a", "service_id": "s", "ttfb_ms": 1}, "slos[0].ttfb_ms"),
        ({"name": "a", "service_id": "s", "bad_errors": []}, "slos[0]"),
        ({"name": "a", "service_id": {"x": 1}, "ttft_ms": 1}, "slos[0].service_id"),
    ],
)
def test_bad_slo_configuration_names_the_key(entry: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(where)):
        slos_from_list([entry])


def test_slo_round_trips_through_its_dict() -> None:
    slo = Slo.from_dict({"name": "a", "service_id": "s", "route": "/v1", "ttft_ms": 300, "period": "7d"})
    assert slo.period_s == 7 * 86400
    assert Slo.from_dict(slo.to_dict()) == slo
    with pytest.raises(ConfigError, match="used twice"):
        slos_from_list([slo.to_dict(), slo.to_dict()])
