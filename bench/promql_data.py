"""The PromQL benchmark's data: 100 services x 4 pods, vLLM-like TTFT buckets and request counters.

Generated with numpy as whole arrays (pods x steps), then written for each system: remote-write
requests in time order for Prometheus (or OpenMetrics text for ``promtool tsdb create-blocks-from
openmetrics``), Prometheus text with ms timestamps for VictoriaMetrics'
``/api/v1/import/prometheus``, and column batches for infersight's ``SampleWriter``. All get the
same points.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from model.labels import Labels, to_labels
from store.writes import SampleWriter

SCRAPE_S = 10  # the guide's scrape interval; long spans may use a coarser one (``generate``)
# vLLM's time-to-first-token buckets (seconds) in the guide's unit, ms.
BUCKETS_MS = (
    1,
    5,
    10,
    20,
    40,
    60,
    80,
    100,
    250,
    500,
    750,
    1000,
    2500,
    5000,
    7500,
    10000,
    20000,
    40000,
    80000,
)
LE = (*(str(b) for b in BUCKETS_MS), "+Inf")
CODES = ("2xx", "4xx", "5xx")
BUCKET_NAME = "infer_service_first_token_cost_bucket"
COUNTER_NAME = "infer_service_request_total"


@dataclass(frozen=True, slots=True)
class Dataset:
    """Counters (pods x codes x steps) and cumulative buckets (pods x le x steps) from ``t0_s``."""

    t0_s: int
    scrape_s: int
    services: int
    pods_per_service: int
    steps: int
    counters: np.ndarray
    buckets: np.ndarray

    @property
    def end_s(self) -> int:
        return self.t0_s + (self.steps - 1) * self.scrape_s

    @property
    def times_s(self) -> np.ndarray:
        return self.t0_s + self.scrape_s * np.arange(self.steps, dtype=np.int64)

    @property
    def samples(self) -> int:
        return int(self.counters.size + self.buckets.size)

    def series(self) -> Iterator[tuple[dict[str, str], np.ndarray]]:
        """Every series' labels (with ``__name__``) and values, one per scrape from ``t0_s``."""
        for pod in range(self.services * self.pods_per_service):
            svc = f"svc-{pod // self.pods_per_service:03d}"
            ident = {"service_id": svc, "source": f"{svc}-pod-{pod % self.pods_per_service}"}
            for i, code in enumerate(CODES):
                yield {"__name__": COUNTER_NAME, **ident, "code": code}, self.counters[pod, i]
            for i, le in enumerate(LE):
                yield {"__name__": BUCKET_NAME, **ident, "le": le}, self.buckets[pod, i]


def generate(
    hours: float, services: int = 100, pods_per_service: int = 4, seed: int = 6, scrape_s: int = SCRAPE_S
) -> Dataset:
    """Poisson request counts per scrape; TTFT from a log-normal whose median differs per service."""
    rng = np.random.default_rng(seed)
    steps = int(hours * 3600 / scrape_s)
    pods = services * pods_per_service
    t0_s = 1_699_999_200 - steps * scrape_s // 7200 * 7200  # 2 h aligned, ending before a fixed time
    rates = np.array((50.0, 1.0, 0.5)) * scrape_s / SCRAPE_S
    per_code = rng.poisson(rates, size=(pods, steps, len(CODES)))
    counters = np.cumsum(per_code, axis=1).transpose(0, 2, 1).astype(np.float64)
    edges = np.log(np.array(BUCKETS_MS, dtype=np.float64))
    buckets = np.empty((pods, len(LE), steps), dtype=np.float64)
    for svc in range(services):
        median_ms = 40.0 * (1 + svc % 10)
        # probability mass per bucket of a log-normal(median, sigma 1) TTFT, last bucket = the rest
        cdf = 0.5 * (1 + _erf((edges - np.log(median_ms)) / np.sqrt(2)))
        pvals = np.diff(np.concatenate(([0.0], cdf, [1.0])))
        rows = slice(svc * pods_per_service, (svc + 1) * pods_per_service)
        counts = rng.multinomial(per_code[rows].sum(axis=2), pvals)  # pods x steps x le
        buckets[rows] = np.cumsum(np.cumsum(counts, axis=2), axis=1).transpose(0, 2, 1)
    return Dataset(t0_s, scrape_s, services, pods_per_service, steps, counters, buckets)


def _erf(x: np.ndarray) -> np.ndarray:
    from math import erf

    return np.vectorize(erf)(x)


def _prefix(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items() if k != "__name__")
    return f"{labels['__name__']}{{{inner}}}"


def _lines(prefix: str, times: np.ndarray, values: np.ndarray) -> str:
    """``prefix value time`` lines formatted in one C-level pass (counts are whole numbers)."""
    pairs = np.empty(2 * len(values), dtype=np.int64)
    pairs[0::2] = values
    pairs[1::2] = times
    return ((prefix + " %d %d\n") * len(values)) % tuple(pairs.tolist())


def write_openmetrics(data: Dataset, path: str) -> None:
    """OpenMetrics text for promtool (timestamps in seconds), every family ``unknown``."""
    times = data.times_s
    by_name: dict[str, list[tuple[dict[str, str], np.ndarray]]] = {}
    for labels, values in data.series():
        by_name.setdefault(labels["__name__"], []).append((labels, values))
    with open(path, "w") as out:
        for name, series in by_name.items():
            out.write(f"# TYPE {name} unknown\n")
            for labels, values in series:
                out.write(_lines(_prefix(labels), times, values))
        out.write("# EOF\n")


def prometheus_text_chunks(data: Dataset, series_per_chunk: int = 200) -> Iterator[bytes]:
    """Prometheus text with ms timestamps, for VictoriaMetrics' import, a few MB at a time."""
    times = data.times_s * 1000
    chunk: list[str] = []
    for labels, values in data.series():
        chunk.append(_lines(_prefix(labels), times, values))
        if len(chunk) == series_per_chunk:
            yield "".join(chunk).encode()
            chunk = []
    if chunk:
        yield "".join(chunk).encode()


def write_store(data: Dataset, writer: SampleWriter, batch_samples: int = 500_000) -> None:
    """All points through ``SampleWriter.write_columns``, a few series' whole spans per batch."""
    times = data.times_s * 1000
    labels: list[Labels] = []
    values: list[np.ndarray] = []

    def flush() -> None:
        writer.write_columns(
            labels, [data.steps] * len(labels), np.tile(times, len(labels)), np.concatenate(values)
        )
        labels.clear()
        values.clear()

    for series_labels, series_values in data.series():
        labels.append(to_labels(series_labels))
        values.append(series_values)
        if len(labels) * data.steps >= batch_samples:
            flush()
    if labels:
        flush()


def remote_write_bodies(data: Dataset, samples_per_body: int = 200_000) -> Iterator[bytes]:
    """Remote-write requests in time order (every series' points of a few scrapes per request).

    In time order Prometheus takes old data as if it had scraped it live: each series only moves
    forward, and its head compacts into blocks as the stream's time passes 3 h.
    """
    from query.api.remote_write import encode_write_request

    series = list(data.series())
    times = (data.times_s * 1000).tolist()
    per_body = max(1, samples_per_body // len(series))
    for lo in range(0, data.steps, per_body):
        hi = min(lo + per_body, data.steps)
        yield encode_write_request(
            [
                (labels, list(zip(times[lo:hi], values[lo:hi].tolist(), strict=True)))
                for labels, values in series
            ]
        )
