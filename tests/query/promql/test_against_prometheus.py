"""Differential test: the same data and queries in a real Prometheus 2.42 and in our engine.

As prometheus/compliance does: data is backfilled into Prometheus with ``promtool tsdb
create-blocks-from openmetrics`` and loaded into a ``MemoryStore``; every query is asked as instant
queries at a few times and as range queries with unaligned starts and odd steps; results (label
sets, timestamps, values within 1e-9 relative, order of instant vectors) must agree. Needs the ``prometheus``
and ``promtool`` binaries of version 2.42 (Debian bookworm's package); skipped, with that reason,
where they are missing.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

from query.promql.engine import Engine
from query.promql.errors import PromQLError
from query.promql.value import to_api_json
from store.memory import MemoryStore
from tests.query.prometheus_ref import SeriesData, assert_same, binaries_missing, http_get, running_prometheus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        # In CI (which installs them) a missing binary must fail the run, not skip it.
        binaries_missing() and not os.environ.get("CI"),
        reason="needs prometheus and promtool 2.42 on PATH (apt-get install prometheus on Debian 12)",
    ),
]

T0 = 1_700_000_000
DURATION_S = 2 * 3600
QUERIES = [
    "http_requests_total",
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[1m])",
    "increase(http_requests_total[59999ms])",
    "delta(temperature[10m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum without (instance) (rate(http_requests_total[2m]))",
    "avg(temperature)",
    "max by (zone) (temperature)",
    "count(temperature > 50)",
    "stddev(temperature)",
    "quantile(0.9, temperature)",
    "topk(2, temperature)",
    "bottomk(2, rate(http_requests_total[5m]))",
    'count_values("code", http_requests_total)',
    "histogram_quantile(0.9, sum by (le) (rate(req_duration_seconds_bucket[5m])))",
    'histogram_quantile(0.90, avg(rate(req_duration_seconds_bucket{service_id="s1"}[1m:30s]))by(le))',
    'sum(increase(req_duration_seconds_sum{service_id="s1"}[59999ms]))by(service_id)'
    '/sum(increase(req_duration_seconds_count{service_id="s1"}[59999ms]))by(service_id)',
    "temperature > bool 50",
    "50 < temperature",
    "-temperature * 2 + 1",
    "temperature offset 10m",
    "rate(http_requests_total[5m] @ 1700005000)",
    "temperature @ end()",
    "avg_over_time(temperature[10m])",
    "max_over_time(temperature[10m:1m])",
    "quantile_over_time(0.75, temperature[15m])",
    "changes(temperature[10m])",
    "resets(http_requests_total[30m])",
    "deriv(temperature[10m])",
    "predict_linear(http_requests_total[10m], 600)",
    "holt_winters(temperature[10m], 0.3, 0.6)",
    'absent(nonexistent{job="x"})',
    "absent_over_time(short_lived[5m])",
    "sort_desc(temperature)",
    "timestamp(temperature)",
    'label_replace(temperature, "inst2", "x-$1", "instance", "(.*)")',
    "temperature and on(zone) (temperature > 90)",
    "temperature or on() vector(0)",
    "(temperature > 50) or (temperature < 10)",
    "rate(http_requests_total[5m]) * on(instance) group_left(zone) temperature",
    "sum by (zone) (temperature) / on(zone) group_right count by (zone, instance) (temperature)",
    "http_requests_total + on(job) http_requests_total",
    'temperature{instance=~"(?i)A|b"}',
    "max_over_time(rate(http_requests_total[1m])[10m:])",
    "sum_over_time(temperature[10m:2m] offset 5m)",
    "scalar(temperature)",
    "time() - 1700000000",
    "temperature[5m]",
    # NaN, ±Inf and huge values: Go's float and calendar arithmetic must be reproduced.
    "avg by (g) (weird)",
    "stddev(weird)",
    "quantile(0.5, weird)",
    "sort(weird)",
    "topk(2, weird)",
    "weird / 0",
    "weird % 3",
    "avg_over_time(weird[5m])",
    "sum_over_time(weird[5m])",
    "stddev_over_time(weird[5m])",
    "deriv(weird[5m])",
    "rate(weird[5m])",
    "changes(weird[10m])",
    "hour(weird)",
    "day_of_month(weird)",
    "deg(weird)",
    "round(weird)",
]
INSTANT_TIMES_S = [T0 + 1800.123, T0 + 3700, T0 + 800, T0 + DURATION_S + 200]
RANGES_S = [(T0 + 1000, T0 + 6000, 60), (T0 + 123.456, T0 + 7100, 17), (T0 - 600, T0 + 1200, 30)]


def _series() -> list[SeriesData]:
    rnd = random.Random(42)
    out: list[SeriesData] = []
    times = range(T0, T0 + DURATION_S, 15)
    for job in ("api", "web"):
        for inst in ("a", "b", "c"):
            value, points = 0.0, []
            for t in times:
                value = 0.0 if rnd.random() < 0.01 else value + rnd.randint(0, 20)
                points.append((float(t), value))
            labels = {
                "__name__": "http_requests_total",
                "job": job,
                "instance": inst,
                "code": rnd.choice("25"),
            }
            out.append((labels, points))
    for inst in ("a", "b", "c", "d"):
        points = [
            (t + rnd.randint(0, 5) / 10, round(rnd.uniform(-5, 100), 3))
            for t in times
            if not (inst == "d" and T0 + 3600 < t < T0 + 4800)
        ]
        out.append(
            ({"__name__": "temperature", "instance": inst, "zone": "z1" if inst < "c" else "z2"}, points)
        )
    bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
    for svc in ("s1", "s2"):
        for pod in ("p1", "p2"):
            counts, total, count = [0.0] * len(bounds), 0.0, 0.0
            per_bound: dict[str, list[tuple[float, float]]] = {b: [] for b in bounds}
            sums, counts_series = [], []
            for t in times:
                for _ in range(rnd.randint(0, 30)):
                    x = rnd.expovariate(3.0 if svc == "s1" else 1.0)
                    total, count = total + x, count + 1
                    counts = [c + (x <= float(b)) for c, b in zip(counts, bounds, strict=True)]
                for b, c in zip(bounds, counts, strict=True):
                    per_bound[b].append((float(t), c))
                sums.append((float(t), round(total, 6)))
                counts_series.append((float(t), count))
            base = {"service_id": svc, "pod": pod}
            for b in bounds:
                out.append(({**base, "__name__": "req_duration_seconds_bucket", "le": b}, per_bound[b]))
            out.append(({**base, "__name__": "req_duration_seconds_sum"}, sums))
            out.append(({**base, "__name__": "req_duration_seconds_count"}, counts_series))
    out.append(
        ({"__name__": "short_lived", "k": "v"}, [(float(t), 1.0) for t in range(T0 + 600, T0 + 900, 15)])
    )
    odd = [0.0, 1.5, -2.0, math.nan, math.inf, -math.inf, 1e308, -1e308]
    for i in range(4):
        points = [
            (float(t), rnd.choice(odd) if rnd.random() < 0.3 else round(rnd.uniform(-10, 10), 2))
            for t in range(T0, T0 + DURATION_S, 30)
        ]
        out.append(({"__name__": "weird", "i": str(i), "g": "x" if i < 2 else "y"}, points))
    return out


@pytest.fixture(scope="module")
def data() -> list[SeriesData]:
    return _series()


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory, data: list[SeriesData]) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), data) as url:
        yield url


@pytest.fixture(scope="module")
def engine(data: list[SeriesData]) -> Engine:
    store = MemoryStore()
    for labels, points in data:
        for t, v in points:
            store.append(labels, round(t * 1000), v)
    return Engine(store)


def _ours(engine: Engine, path: str, query: str, **params: str) -> dict[str, Any]:
    try:
        if path == "query":
            value = engine.instant(query, round(float(params["time"]) * 1000))
        else:
            start, end, step = (round(float(params[k]) * 1000) for k in ("start", "end", "step"))
            value = engine.range(query, start, end, step)
    except PromQLError as err:
        return {"status": "error", "errorType": err.error_type}
    return {"status": "success", "data": json.loads(json.dumps(to_api_json(value)))}


def _assert_same(theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    assert_same(theirs, ours, rel=1e-9)


@pytest.mark.parametrize("query", QUERIES)
def test_instant_queries_agree(prometheus_url: str, engine: Engine, query: str) -> None:
    for t in INSTANT_TIMES_S:
        params = {"time": str(t)}
        _assert_same(
            http_get(prometheus_url, "query", query=query, **params), _ours(engine, "query", query, **params)
        )


@pytest.mark.parametrize("query", QUERIES)
def test_range_queries_agree(prometheus_url: str, engine: Engine, query: str) -> None:
    for start, end, step in RANGES_S:
        params = {"start": str(start), "end": str(end), "step": str(step)}
        theirs = http_get(prometheus_url, "query_range", query=query, **params)
        _assert_same(theirs, _ours(engine, "query_range", query, **params))
