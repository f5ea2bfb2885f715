"""The dashboard benchmark's data: every metric the generated dashboards chart, per pod.

``services`` x ``pods`` pods, each with the labels the dashboards filter on (``project_id``,
``service_id``, ``group_id``, ``instance_name``, ``source``) and about 90 series: the container
gauges, ``up`` and the scrape gauges, the request counters by code and five latency/token
histograms of 11 buckets. Values are whole numbers (exact in every system's text and float forms),
one point per scrape; counters only grow. The same points go to every system.
``infersight_sketch_quantile`` is left out: infersight answers it from its sketches (none here),
so every system answers its panel empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bench.promql_data import _lines, _prefix
from model.labels import Labels, to_labels
from store.writes import SampleWriter

PROJECT = "bench"
LE = ("5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "+Inf")
HISTOGRAMS = (
    "infer_service_first_token_cost",
    "infer_service_per_token_cost",
    "infer_service_request_cost",
    "infer_service_input_token_quantity",
    "infer_service_output_token_quantity",
)
GAUGES = (
    "up",
    "scrape_duration_seconds",
    "infersight_scrape_body_bytes",
    "infer_service_request_connect_count",
    "ma_container_cpu_used_core",
    "ma_container_cpu_util",
    "ma_container_gpu_mem_used_megabytes",
    "ma_container_gpu_mem_util",
    "ma_container_gpu_util",
    "ma_container_memory_used_megabytes",
    "ma_container_memory_util",
    "ma_container_network_receive_bytes",
    "ma_container_network_transmit_bytes",
    "ma_container_npu_memory_used_megabytes",
    "ma_container_npu_memory_util",
    "ma_container_npu_util",
)


@dataclass(frozen=True, slots=True)
class DashboardData:
    """``series``: (labels with ``__name__``, one value per scrape from ``t0_s``)."""

    t0_s: int
    scrape_s: int
    steps: int
    services: int
    pods_per_service: int
    series: list[tuple[dict[str, str], np.ndarray]]

    @property
    def end_s(self) -> int:
        return self.t0_s + (self.steps - 1) * self.scrape_s

    @property
    def times_s(self) -> np.ndarray:
        return self.t0_s + self.scrape_s * np.arange(self.steps, dtype=np.int64)

    @property
    def samples(self) -> int:
        return len(self.series) * self.steps


def generate(
    hours: float, services: int, pods_per_service: int = 4, scrape_s: int = 10, end_s: int = 1_700_000_000
) -> DashboardData:
    """``hours`` of scrapes up to ``end_s``; the values depend on nothing else, so runs compare."""
    rng = np.random.default_rng(19)
    steps = int(hours * 3600 / scrape_s) + 1
    t0_s = end_s - (steps - 1) * scrape_s
    out: list[tuple[dict[str, str], np.ndarray]] = []
    for pod in range(services * pods_per_service):
        svc = f"svc-{pod // pods_per_service:03d}"
        source = f"{svc}-pod-{pod % pods_per_service}"
        ident = {
            "project_id": PROJECT,
            "service_id": svc,
            "group_id": f"{svc}-grp",
            "instance_name": f"{svc}-inst-{pod % 2}",
            "source": source,
        }
        for name in GAUGES:
            level = 1.0 if name == "up" else 50.0
            walk = np.clip(level + np.cumsum(rng.integers(-2, 3, steps)), 0, None)
            out.append(({"__name__": name, **ident}, np.ones(steps) if name == "up" else walk.astype(float)))
        out.append(
            (
                {"__name__": "infersight_scrape_errors_total", **ident, "reason": "timeout"},
                np.cumsum(rng.poisson(0.05, steps)).astype(float),
            )
        )
        out.append(
            (
                {
                    "__name__": "infersight_events_total",
                    **ident,
                    "kind": "pod",
                    "type": "Warning",
                    "reason": "OOM",
                },
                np.cumsum(rng.poisson(0.01, steps)).astype(float),
            )
        )
        per_code = rng.poisson((50.0, 1.0, 0.5), size=(steps, 3))
        for i, code in enumerate(("2xx", "4xx", "5xx")):
            out.append(
                (
                    {"__name__": "infer_service_request_total", **ident, "code": code},
                    np.cumsum(per_code[:, i]) * 1.0,
                )
            )
        requests = per_code.sum(axis=1)
        out.append(({"__name__": "infer_service_token_count", **ident}, np.cumsum(requests * 300) * 1.0))
        for h, name in enumerate(HISTOGRAMS):
            pvals = np.diff(
                np.concatenate(([0.0], np.linspace(0.05, 0.99, len(LE) - 1) ** (1 + h % 3), [1.0]))
            )
            counts = rng.multinomial(requests, pvals)  # steps x le
            cumulative = np.cumsum(np.cumsum(counts, axis=1), axis=0).astype(float)
            for i, le in enumerate(LE):
                out.append(({"__name__": f"{name}_bucket", **ident, "le": le}, cumulative[:, i]))
            out.append(({"__name__": f"{name}_count", **ident}, cumulative[:, -1]))
            out.append(({"__name__": f"{name}_sum", **ident}, np.cumsum(requests * (40 + 30 * h)) * 1.0))
    return DashboardData(t0_s, scrape_s, steps, services, pods_per_service, out)


def write_store(data: DashboardData, writer: SampleWriter, batch_samples: int = 500_000) -> None:
    times = data.times_s * 1000
    labels: list[Labels] = []
    values: list[np.ndarray] = []

    def flush() -> None:
        writer.write_columns(
            labels, [data.steps] * len(labels), np.tile(times, len(labels)), np.concatenate(values)
        )
        labels.clear()
        values.clear()

    for series_labels, series_values in data.series:
        labels.append(to_labels(series_labels))
        values.append(series_values)
        if len(labels) * data.steps >= batch_samples:
            flush()
    if labels:
        flush()


def prometheus_text_chunks(data: DashboardData, series_per_chunk: int = 200) -> Iterator[bytes]:
    """Prometheus text with ms timestamps, for VictoriaMetrics' import."""
    times = data.times_s * 1000
    for lo in range(0, len(data.series), series_per_chunk):
        yield "".join(
            _lines(_prefix(labels), times, values)
            for labels, values in data.series[lo : lo + series_per_chunk]
        ).encode()


def remote_write_bodies(data: DashboardData, samples_per_body: int = 200_000) -> Iterator[bytes]:
    """Remote-write requests in time order, so Prometheus takes them as if scraped live."""
    from query.api.remote_write import encode_write_request

    times = (data.times_s * 1000).tolist()
    per_body = max(1, samples_per_body // len(data.series))
    for lo in range(0, data.steps, per_body):
        hi = min(lo + per_body, data.steps)
        yield encode_write_request(
            [
                (labels, list(zip(times[lo:hi], values[lo:hi].tolist(), strict=True)))
                for labels, values in data.series
            ]
        )


def live_scrapes(data: DashboardData, from_s: int, to_s: int) -> bytes | None:
    """One remote-write request with every series' scrapes after ``from_s`` up to ``to_s``, as if the
    pods went on being scraped: each series goes on at its mean rate over the generated span
    (counters keep growing, gauges barely move). None when no scrape falls in that time."""
    from query.api.remote_write import encode_write_request

    first = (from_s // data.scrape_s + 1) * data.scrape_s
    stamps = list(range(first, to_s + 1, data.scrape_s))
    if not stamps:
        return None
    after = [(t - data.end_s) // data.scrape_s for t in stamps]  # scrapes since the data's end
    series = []
    for labels, values in data.series:
        last = float(values[-1])
        rate = (last - float(values[0])) / max(data.steps - 1, 1)
        series.append((labels, [(t * 1000, last + rate * k) for t, k in zip(stamps, after, strict=True)]))
    return encode_write_request(series)
