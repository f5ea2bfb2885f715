"""Sketch quantiles as a PromQL series: merged across the matched pods, per 10 s window."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from collector.window import WindowedSketches
from query import sketch_series
from query.api.app import create_app
from store.open import Store
from store.sketches import SketchWriter

T0_S = 1_764_000_000  # a multiple of 10 s


@pytest.fixture
def client(chdb_store: Store) -> tuple[TestClient, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    windows = WindowedSketches(width_s=10)
    truth: dict[str, list[float]] = {"a": [], "b": []}
    for pod in ("pod-0", "pod-1"):
        for service in ("a", "b"):
            values = rng.lognormal(np.log(80 if service == "a" else 200), 0.6, 500)
            truth[service] += values.tolist()
            labels = {"service_id": service, "source": pod, "project_id": "p1"}
            windows.observe("infer_service_first_token_cost", labels, values, T0_S + 3)
    SketchWriter(chdb_store.backend).write(windows.drain_all())
    return TestClient(create_app(chdb_store)), {k: np.asarray(v) for k, v in truth.items()}


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_quantile_merged_across_pods_within_one_percent(client, q: float) -> None:
    api, truth = client
    sel = f'metric="infer_service_first_token_cost", quantile="{q}", service_id="a"'
    query = f"infersight_sketch_quantile{{{sel}}}"
    result = api.get("/api/v1/query", params={"query": query, "time": T0_S + 15}).json()["data"]["result"]
    (series,) = result
    exact = float(np.quantile(truth["a"], q, method="inverted_cdf"))
    assert float(series["value"][1]) == pytest.approx(exact, rel=0.01)
    assert series["metric"]["service_id"] == "a"


def test_grafana_all_selects_everything_and_aggregations_work(client) -> None:
    api, truth = client
    sel = 'metric="infer_service_first_token_cost", service_id=~".*"'
    query = f"max by (quantile) (infersight_sketch_quantile{{{sel}}})"
    result = api.get("/api/v1/query", params={"query": query, "time": T0_S + 15}).json()["data"]["result"]
    values = {r["metric"]["quantile"]: float(r["value"][1]) for r in result}
    everything = np.concatenate([truth["a"], truth["b"]])
    assert values["0.9"] == pytest.approx(
        float(np.quantile(everything, 0.9, method="inverted_cdf")), rel=0.01
    )
    assert set(values) == {"0.5", "0.9", "0.99", "0.999"}


def test_range_query_has_one_point_per_window_and_nothing_outside(client) -> None:
    api, _ = client
    query = (
        'infersight_sketch_quantile{metric="infer_service_first_token_cost", quantile="0.5", service_id="b"}'
    )
    params = {"query": query, "start": T0_S - 60, "end": T0_S + 60, "step": "10s"}
    (series,) = api.get("/api/v1/query_range", params=params).json()["data"]["result"]
    # the window [T0, T0+10) has its point at T0+10; lookback carries it on to later steps
    assert series["values"][0][0] == T0_S + 10
    missing = 'infersight_sketch_quantile{metric="infer_service_first_token_cost", service_id=~"a|b"}'
    assert (
        api.get("/api/v1/query", params={"query": missing, "time": T0_S + 15}).json()["data"]["result"] == []
    )


def test_grafana_single_value_variable_is_a_literal_regex(client) -> None:
    api, truth = client
    query = (
        'infersight_sketch_quantile{metric="infer_service_first_token_cost", quantile="0.5", service_id=~"a"}'
    )
    (series,) = api.get("/api/v1/query", params={"query": query, "time": T0_S + 15}).json()["data"]["result"]
    assert float(series["value"][1]) == pytest.approx(
        float(np.quantile(truth["a"], 0.5, method="inverted_cdf")), rel=0.01
    )


def _traffic_in_windows(store: Store, window_starts_s: list[int]) -> None:
    rng = np.random.default_rng(11)
    windows = WindowedSketches(width_s=10)
    labels = {"service_id": "c", "source": "pod-0", "project_id": "p1"}
    for start in window_starts_s:
        windows.observe("infer_service_first_token_cost", labels, rng.lognormal(4, 0.5, 50), start + 5)
    SketchWriter(store.backend).write(windows.drain_all())


C_MEDIAN = (
    'infersight_sketch_quantile{metric="infer_service_first_token_cost", quantile="0.5", service_id="c"}'
)


def test_series_ends_when_its_windows_end_no_lookback_echo(chdb_store: Store) -> None:
    # traffic in [T0, T0+30) and [T0+50, T0+60); nothing before, between or after
    _traffic_in_windows(chdb_store, [T0_S, T0_S + 10, T0_S + 20, T0_S + 50])
    api = TestClient(create_app(chdb_store))
    params = {"query": C_MEDIAN, "start": T0_S - 60, "end": T0_S + 400, "step": "5s"}
    (series,) = api.get("/api/v1/query_range", params=params).json()["data"]["result"]
    steps = [int(t) for t, _ in series["values"]]
    # each window's point holds until the next window's end, then the series is gone: no five-minute echo
    assert steps == [T0_S + 10, T0_S + 15, T0_S + 20, T0_S + 25, T0_S + 30, T0_S + 35, T0_S + 60, T0_S + 65]

    def instant(at: int) -> list[object]:
        return api.get("/api/v1/query", params={"query": C_MEDIAN, "time": at}).json()["data"]["result"]

    assert instant(T0_S + 200) == []
    assert len(instant(T0_S + 65)) == 1


@pytest.mark.parametrize("asked_at", [T0_S + 45, T0_S + 50])
def test_last_window_stands_until_the_next_one_has_settled(
    chdb_store: Store, monkeypatch: pytest.MonkeyPatch, asked_at: int
) -> None:
    # the window after the last one may still be on its way from the proxy: until it has been over
    # for SETTLE (20 s) on the clock the last value stands, as a scrape's last sample would; then
    # it is gone, also at the earlier steps
    monkeypatch.setattr(sketch_series, "now_ms", lambda: asked_at * 1000)
    _traffic_in_windows(chdb_store, [T0_S, T0_S + 10])
    api = TestClient(create_app(chdb_store))

    def instant(at: int) -> list[dict[str, object]]:
        return api.get("/api/v1/query", params={"query": C_MEDIAN, "time": at}).json()["data"]["result"]

    settled = asked_at >= T0_S + 50
    for at in (T0_S + 35, T0_S + 45):
        assert [r["value"][0] for r in instant(at)] == ([] if settled else [at])


def test_a_step_does_not_depend_on_the_range_it_is_asked_in(chdb_store: Store) -> None:
    # A long range is evaluated in passes of 720 steps, each selecting up to its own last step; the
    # window ending at T0+650 is empty and settled long ago, so every step from then on has no
    # value, whether the step is near a pass's end or asked alone.
    _traffic_in_windows(chdb_store, [T0_S, T0_S + 10, T0_S + 630])
    api = TestClient(create_app(chdb_store))
    params = {"query": C_MEDIAN, "start": T0_S - 60, "end": T0_S + 800, "step": "1s", "nocache": "1"}
    (series,) = api.get("/api/v1/query_range", params=params).json()["data"]["result"]
    in_range = {int(t): v for t, v in series["values"]}
    assert T0_S + 649 in in_range
    assert T0_S + 650 not in in_range
    for at in range(T0_S + 600, T0_S + 700, 3):
        alone = api.get("/api/v1/query", params={"query": C_MEDIAN, "time": at}).json()["data"]["result"]
        assert [r["value"][1] for r in alone] == ([in_range[at]] if at in in_range else [])
