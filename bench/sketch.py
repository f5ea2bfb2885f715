"""Quantile sketches: add and merge speed and TP50/90/99/99.9 error against ddsketch and the OTel SDK.

Run: ``python -m bench.sketch [--quick]``. The same values go to every implementation: 100 pods x
360 windows of 10 s (an hour) with ``--per-window`` values each (5 with ``--quick``, 50 without),
drawn from a log-normal (TTFT-like, ms) and a Pareto (alpha = 1.5, heavy tail) distribution.

- ours: ``ExponentialHistogram.add_many`` on all values at once ("bulk"), and ``sketch_groups`` on
  every window at once ("windowed": what ``WindowedSketches.drain`` does when 36,000 windows close);
  and the proxy's per-request path: ``WindowedSketches.observe`` of one float (drain included);
  merge = ``merge_columns`` of the 36,000 window sketches (the sum ClickHouse's ``sumMap`` does).
- ddsketch 3.x ``DDSketch(0.01)``: ``add`` per value into one sketch ("add"), and a sketch per
  window ("windowed", sketch creation included as in ours); merge = ``merge`` of every window
  sketch into one.
- OpenTelemetry SDK exponential histogram (default 160 buckets, max scale 20) through the public
  API: ``Histogram.record`` per value; merge = the SDK's cumulative collection, which merges each
  window's delta buckets into the running state (one collection per window).

Errors are relative to the exact quantile of all values (numpy ``inverted_cdf``, the rank convention
of ours). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ddsketch import DDSketch
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import ExponentialHistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

from collector.window import WindowedSketches
from sketch import ExponentialHistogram, from_columns
from sketch.batch import merge_columns, sketch_groups

QS = (0.5, 0.9, 0.99, 0.999)
PODS, WINDOWS = 100, 360
# vLLM's TTFT buckets (vllm/v1/metrics/buckets.py), in ms: what histogram_quantile gets to work with.
VLLM_TTFT_LE_MS = np.array(
    [1, 5, 10, 20, 40, 60, 80, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 20000, 40000, 80000,
     160000, 640000, 2560000],
    dtype=np.float64,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Result:
    """One implementation on one data set: seconds spent, quantiles read back, extra figures."""

    quantiles: list[float]
    add_s: float = math.nan
    add_windowed_s: float = math.nan
    merge_s: float = math.nan
    extra: dict[str, float] = field(default_factory=dict)


def _values(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "lognormal":
        return rng.lognormal(math.log(120.0), 1.0, n)  # TTFT, ms: median 120 ms
    return (rng.pareto(1.5, n) + 1.0) * 20.0  # Pareto, x_m = 20 ms, alpha = 1.5 (infinite variance)


def _best_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _errors_pct(estimates: list[float] | np.ndarray, exact: np.ndarray) -> list[float]:
    return [round(abs(e - x) / abs(x) * 100, 3) for e, x in zip(estimates, exact, strict=True)]


def _histogram_quantile(values: np.ndarray) -> list[float]:
    """PromQL ``histogram_quantile`` over classic buckets (linear inside the bucket), for comparison."""
    cumulative = np.searchsorted(np.sort(values), VLLM_TTFT_LE_MS, side="right").astype(np.float64)
    out = []
    for q in QS:
        rank = q * values.size
        b = int(np.searchsorted(cumulative, rank, side="left"))
        if b == VLLM_TTFT_LE_MS.size:  # in +Inf: Prometheus answers the highest finite bound
            out.append(float(VLLM_TTFT_LE_MS[-1]))
            continue
        start = 0.0 if b == 0 else VLLM_TTFT_LE_MS[b - 1]
        below = 0.0 if b == 0 else cumulative[b - 1]
        inside = cumulative[b] - below
        out.append(float(start + (VLLM_TTFT_LE_MS[b] - start) * (rank - below) / inside))
    return out


def _ours(values: np.ndarray, per_window: int, repeat: int) -> Result:
    lengths = [per_window] * (values.size // per_window)
    bulk_s = _best_s(lambda: ExponentialHistogram().add_many(values), repeat)
    windowed_s = _best_s(lambda: sketch_groups(values, lengths), repeat)
    columns = [c for c in sketch_groups(values, lengths) if c is not None]
    merge_s = _best_s(lambda: merge_columns(columns), repeat)
    merged = from_columns(merge_columns(columns))
    window_bytes = np.mean([c.positive_keys.nbytes + c.positive_counts.nbytes for c in columns])
    return Result(
        quantiles=merged.quantiles(QS).tolist(),
        add_s=bulk_s,
        add_windowed_s=windowed_s,
        merge_s=merge_s,
        extra={
            "window_bytes": float(window_bytes),
            "merged_buckets": len(merged.positive),
            "merged_bytes": merged.size_bytes,
        },
    )


def _observe_ns(values: np.ndarray) -> float:
    """Per-request cost in the proxy: ``WindowedSketches.observe`` of one float, then the drain, ns each."""
    windows = WindowedSketches()
    labels = {"service_id": "svc", "group_id": "dep", "source": "pod-0", "project_id": "p"}
    flat = values[:100_000].tolist()
    observe = windows.observe
    start = time.perf_counter()
    for i, value in enumerate(flat):
        observe("infer_service_first_token_cost", labels, value, 1_700_000_000 + i * 0.01)
    windows.drain_all()
    return (time.perf_counter() - start) / len(flat) * 1e9


def _ddsketch(values: np.ndarray, per_window: int) -> Result:
    flat = values.tolist()
    one = DDSketch(0.01)
    add = one.add
    start = time.perf_counter()
    for value in flat:
        add(value)
    add_s = time.perf_counter() - start
    windows = [flat[i : i + per_window] for i in range(0, len(flat), per_window)]
    start = time.perf_counter()
    sketches = []
    for window in windows:
        sketch = DDSketch(0.01)
        add = sketch.add
        for value in window:
            add(value)
        sketches.append(sketch)
    windowed_s = time.perf_counter() - start
    start = time.perf_counter()
    merged = DDSketch(0.01)
    for sketch in sketches:
        merged.merge(sketch)
    merge_s = time.perf_counter() - start
    quantiles = [merged.get_quantile_value(q) for q in QS]
    return Result([math.nan if v is None else v for v in quantiles], add_s, windowed_s, merge_s)


def _otel(values: np.ndarray, per_window: int, collect_per_window: bool) -> Result:

    reader = InMemoryMetricReader()  # cumulative: each collection merges the new buckets in
    provider = MeterProvider(
        metric_readers=[reader],
        views=[View(instrument_type=Histogram, aggregation=ExponentialBucketHistogramAggregation())],
    )
    record = provider.get_meter("bench").create_histogram("ttft", unit="ms").record
    add_s = collect_s = 0.0
    step = per_window if collect_per_window else values.size
    for i in range(0, values.size, step):
        window = values[i : i + step].tolist()
        start = time.perf_counter()
        for value in window:
            record(value)
        mid = time.perf_counter()
        data = reader.get_metrics_data()
        collect_s += time.perf_counter() - mid
        add_s += mid - start
    assert data is not None
    point = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
    assert isinstance(point, ExponentialHistogramDataPoint)
    provider.shutdown()
    # Read OTel's buckets back with our code: same scheme, same rank convention, its final scale.
    histogram = ExponentialHistogram(point.scale)
    counts = np.asarray(point.positive.bucket_counts, dtype=np.uint64)
    keys = np.arange(point.positive.offset, point.positive.offset + counts.size)
    histogram.positive.add_counts(keys[counts > 0], counts[counts > 0])
    histogram.count, histogram.sum, histogram.min, histogram.max = (
        point.count,
        point.sum,
        point.min,
        point.max,
    )
    return Result(
        histogram.quantiles(QS).tolist(), add_s, merge_s=collect_s, extra={"final_scale": point.scale}
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 values per window instead of 50 (< 1 min)")
    parser.add_argument("--per-window", type=int, default=None, help="values per pod and 10 s window")
    args = parser.parse_args()
    per_window = args.per_window or (5 if args.quick else 50)
    repeat = 3
    n = PODS * WINDOWS * per_window
    figures: dict[str, float] = {"pods": PODS, "windows_per_pod": WINDOWS, "values_per_window": per_window}
    for seed, kind in enumerate(("lognormal", "pareto")):
        values = _values(kind, n, seed)
        exact = np.quantile(values, QS, method="inverted_cdf")
        timed = kind == "lognormal"  # speeds on one distribution; errors on both
        results: dict[str, Result] = {
            "ours": _ours(values, per_window, repeat if timed else 1),
            "ddsketch": _ddsketch(values, per_window),
            "otel": _otel(values, per_window, collect_per_window=timed),
        }
        results["histogram_quantile_vllm_buckets"] = Result(_histogram_quantile(values))
        for impl, result in results.items():
            for q, err in zip(QS, _errors_pct(result.quantiles, exact), strict=True):
                figures[f"{impl}_{kind}_tp{q * 100:g}_rel_error_pct"] = err
        figures[f"otel_{kind}_final_scale"] = results["otel"].extra["final_scale"]
        figures[f"ours_{kind}_merged_buckets"] = results["ours"].extra["merged_buckets"]
        if timed:
            figures.update(_speeds(results, n))
            figures["ours_observe_one_value_ns"] = round(_observe_ns(values))
        _log(kind, results, exact)
    ours_errors = [float(v) for k, v in figures.items() if k.startswith("ours_") and k.endswith("_error_pct")]
    figures["ours_max_rel_error_pct"] = max(ours_errors)
    print(json.dumps(figures))  # noqa: T201 - the benchmark's result line


def _speeds(results: dict[str, Result], n: int) -> dict[str, float]:
    ours, dd, otel = results["ours"], results["ddsketch"], results["otel"]
    windows = PODS * WINDOWS
    return {
        "ours_add_bulk_values_per_s": round(n / ours.add_s),
        "ours_add_windowed_values_per_s": round(n / ours.add_windowed_s),
        "ddsketch_add_values_per_s": round(n / dd.add_s),
        "ddsketch_add_windowed_values_per_s": round(n / dd.add_windowed_s),
        "otel_add_values_per_s": round(n / otel.add_s),
        "add_bulk_vs_ddsketch_x": round(dd.add_s / ours.add_s, 1),
        "add_windowed_vs_ddsketch_windowed_x": round(dd.add_windowed_s / ours.add_windowed_s, 1),
        "add_bulk_vs_otel_x": round(otel.add_s / ours.add_s, 1),
        "ours_merge_windows_per_s": round(windows / ours.merge_s),
        "ours_merge_values_per_s": round(n / ours.merge_s),
        "ddsketch_merge_windows_per_s": round(windows / dd.merge_s),
        "otel_merge_windows_per_s": round(windows / otel.merge_s),
        "merge_vs_ddsketch_x": round(dd.merge_s / ours.merge_s, 1),
        "ours_window_sketch_bytes_avg": round(ours.extra["window_bytes"]),
        "ours_merged_sketch_bytes": ours.extra["merged_bytes"],
    }


def _log(kind: str, results: dict[str, Result], exact: np.ndarray) -> None:
    for impl, result in results.items():
        errors = _errors_pct(result.quantiles, exact)
        line = ", ".join(f"TP{q * 100:g} {e:.3f}%" for q, e in zip(QS, errors, strict=True))
        print(f"{kind:9} {impl:30} relative error: {line}", flush=True)  # noqa: T201 - progress


if __name__ == "__main__":
    main()
