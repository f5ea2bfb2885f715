"""Generated series for the differential test: the guide's series shapes, 10 s scrapes, 2 hours.

``history()`` is backfilled (promtool) into Prometheus; ``head()`` follows it in time and carries
staleness markers, which text formats cannot, so it goes to Prometheus by remote write. Both go to
infersight through ``SampleWriter``.
"""

from __future__ import annotations

import math
import random

from model.series import STALE_NAN
from tests.query.api.differential_queries import SVC, SVC2
from tests.query.prometheus_ref import SeriesData

T0_S = 1_699_999_200  # a multiple of 2 h: promtool's history fills exactly one block
HISTORY_S = 7200
HEAD_S = 1800
SCRAPE_S = 10
PODS = ("pod-0", "pod-1")
BUCKETS_MS = ("10", "25", "50", "100", "250", "500", "1000", "2500", "+Inf")
HISTOGRAMS = {
    "infer_service_request_cost": 150.0,
    "infer_service_first_token_cost": 60.0,
    "infer_service_per_token_cost": 15.0,
    "infer_service_input_token_quantity": 300.0,
    "infer_service_output_token_quantity": 400.0,
}


def _identity(svc: str, pod: str) -> dict[str, str]:
    return {"service_id": svc, "service_name": f"llm-{svc[:4]}", "source": pod}


def _counters(rnd: random.Random, times: range) -> list[SeriesData]:
    out: list[SeriesData] = []
    for svc, pod, code in ((s, p, c) for s in (SVC, SVC2) for p in PODS for c in ("2xx", "4xx", "5xx")):
        value, points = 0.0, []
        for t in times:
            # about one reset (pod restart) per series every 40 minutes
            value = 0.0 if rnd.random() < 1 / 240 else value + rnd.randint(0, 30 if code == "2xx" else 3)
            points.append((float(t), value))
        labels = {"__name__": "infer_service_request_total", **_identity(svc, pod), "code": code}
        out.append(({**labels, "method": "POST", "path": "/v1/chat/completions"}, points))
    return out


def _histograms(rnd: random.Random, times: range) -> list[SeriesData]:
    out: list[SeriesData] = []
    for (name, mean), svc, pod in ((h, s, p) for h in HISTOGRAMS.items() for s in (SVC, SVC2) for p in PODS):
        counts, total = [0.0] * len(BUCKETS_MS), 0.0
        per_bucket: list[list[tuple[float, float]]] = [[] for _ in BUCKETS_MS]
        sums, totals = [], []
        for t in times:
            for _ in range(rnd.randint(0, 12)):
                x = rnd.expovariate(1 / mean)
                total += x
                counts = [c + (x <= float(b)) for c, b in zip(counts, BUCKETS_MS, strict=True)]
            for points, c in zip(per_bucket, counts, strict=True):
                points.append((float(t), c))
            sums.append((float(t), round(total, 3)))
            totals.append((float(t), counts[-1]))
        base = {**_identity(svc, pod)}
        for b, points in zip(BUCKETS_MS, per_bucket, strict=True):
            out.append(({**base, "__name__": f"{name}_bucket", "le": b}, points))
        out.append(({**base, "__name__": f"{name}_sum"}, sums))
        out.append(({**base, "__name__": f"{name}_count"}, totals))
    return out


def _gauges(rnd: random.Random, times: range) -> list[SeriesData]:
    out: list[SeriesData] = []
    odd = [0.0, 1.5, -2.0, math.nan, math.inf, -math.inf, 1e308, -1e308]
    for i, (svc, pod) in enumerate((s, p) for s in (SVC, SVC2) for p in PODS):
        gap = (T0_S + 1200 * (i + 1), T0_S + 1200 * (i + 1) + 420)  # 7 min: longer than the lookback
        points = [
            (t + rnd.randint(0, 9) / 10, round(rnd.uniform(0, 100), 2))
            for t in times
            if not gap[0] <= t < gap[1]
        ]
        out.append(({"__name__": "ma_container_cpu_util", **_identity(svc, pod)}, points))
        weird = [
            (float(t), rnd.choice(odd) if rnd.random() < 0.3 else round(rnd.uniform(-10, 10), 2))
            for t in times[::3]
        ]
        out.append(({"__name__": "weird", "service_id": svc, "source": pod, "i": str(i)}, weird))
    return out


def history() -> list[SeriesData]:
    """Everything before ``T0_S + HISTORY_S``: counters with resets, histograms, gauges, odd values."""
    rnd = random.Random(6)
    times = range(T0_S, T0_S + HISTORY_S, SCRAPE_S)
    return [*_counters(rnd, times), *_histograms(rnd, times), *_gauges(rnd, times)]


def head() -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
    """``pod_up`` per pod after the history, in ms: up, then a staleness marker (pod gone), then back."""
    out = []
    for i, pod in enumerate(PODS):
        points: list[tuple[int, float]] = []
        for t in range(T0_S + HISTORY_S, T0_S + HISTORY_S + HEAD_S, SCRAPE_S):
            gone = T0_S + HISTORY_S + 300 * (i + 1) <= t < T0_S + HISTORY_S + 300 * (i + 1) + 600
            if not gone:
                points.append((t * 1000, 1.0 + i))
            elif points and not math.isnan(points[-1][1]):  # first scrape missed: mark stale
                points.append((t * 1000, STALE_NAN))
        out.append(({"__name__": "pod_up", **_identity(SVC, pod)}, points))
    return out
