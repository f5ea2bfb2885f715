"""The proxy's observations → the guide's series (SEED-SPEC §1.2): pure, the time is passed in.

- ``infer_service_request_total{code,method,path}`` (counter; code "2xx"/"4xx"/"5xx", T1-60) and
  ``infersight_proxy_requests_total{status,method,path,outcome}`` with the exact status code;
- classic histograms in ms / tokens with ``_bucket{le}``/``_sum``/``_count`` (the guide gives no
  bounds; ours are below, chosen to cover 1 ms … 2 min and 1 … 128 k tokens);
- per-period gauges ``infer_service_{first_token,per_token,token_latency}_{avg,min,max}_cost`` over
  the observations since the previous ``to_samples`` (a period without any gives no sample, so a
  dashboard shows a gap rather than a false 0);
- ``infer_service_request_connect_count`` (live connections) and ``infer_service_token_count``
  (output tokens, a counter as the vLLM adapter keeps it);
- ``infersight_proxy_websocket_messages_total{direction}`` (``to_upstream`` / ``to_client``): WebSocket
  messages relayed, once any were;
- ``infersight_proxy_upstream_retries_total``: requests sent again on a fresh connection after a
  reused keep-alive connection closed before answering (server.py), once any were.

Each histogram bucket also keeps its latest exemplar (``exemplars``, drained with
``drain_exemplars``): the request's id and trace id with the value that landed there; per-token
gaps give one per request, its slowest.

``path`` is the request path without its query; past ``max_paths`` distinct paths new ones are
counted under ``path="other"`` so that a scan of random URLs cannot explode the series count.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.utils import floatToGoString

from collector import catalog
from collector.proxy.exemplars import REQUEST_ID, TRACE_ID, Exemplar, ExemplarReservoir
from collector.proxy.timing import RequestObservation
from model.labels import METRIC_NAME, to_labels
from model.series import Sample

LATENCY_BUCKETS_MS = (
    1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 7500, 10000, 20000, 30000, 60000, 120000,
)  # fmt: skip
PER_TOKEN_BUCKETS_MS = (1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000, 2500)
TOKEN_BUCKETS = (*(m * 10**e for e in range(6) for m in (1, 2, 5)), 1_000_000)

PROXY_REQUESTS_TOTAL = "infersight_proxy_requests_total"
PROXY_WS_MESSAGES_TOTAL = "infersight_proxy_websocket_messages_total"
PROXY_UPSTREAM_RETRIES_TOTAL = "infersight_proxy_upstream_retries_total"
OTHER_PATH = "other"

# per-period gauge families: (guide prefix, which values of an observation feed it)
PERIOD_GAUGES = ("first_token", "per_token", "token_latency")


@dataclass(slots=True)
class Histogram:
    """A classic cumulative histogram: ``counts[i]`` = observations ≤ ``bounds[i]``, then +Inf."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, values: Sequence[float]) -> None:
        counts, bounds, where = self.counts, self.bounds, bisect.bisect_left
        for v in values:
            counts[where(bounds, v)] += 1
        self.total += sum(values)
        self.count += len(values)

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            out.append((floatToGoString(bound), running))  # type: ignore[no-untyped-call]
        return out


@dataclass(slots=True)
class PeriodStat:
    """avg/min/max of the values seen since the last reset."""

    total: float = 0.0
    count: int = 0
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: Sequence[float]) -> None:
        if not values:
            return
        self.total += sum(values)
        self.count += len(values)
        self.low = min(self.low, min(values))
        self.high = max(self.high, max(values))


class ProxyStats:
    """Aggregates ``RequestObservation`` records into samples with ``identity`` labels.

    >>> stats = ProxyStats({"service_id": "svc"})
    >>> stats.observe(RequestObservation(ts_s=0, method="POST", path="/v1/chat/completions",
    ...                                  status=200, cost_ms=12.0))
    >>> samples = stats.to_samples(ts_ms=1000, connections=0)
    """

    def __init__(self, identity: dict[str, str], *, max_paths: int = 64) -> None:
        self.identity = dict(identity)
        self.max_paths = max_paths
        self.requests: dict[tuple[str, str, str], int] = {}
        self.statuses: dict[tuple[str, str, str, str], int] = {}
        self.histograms = {
            catalog.REQUEST_COST: Histogram(LATENCY_BUCKETS_MS),
            catalog.FIRST_TOKEN_COST: Histogram(LATENCY_BUCKETS_MS),
            catalog.PER_TOKEN_COST: Histogram(PER_TOKEN_BUCKETS_MS),
            catalog.INPUT_TOKEN_QUANTITY: Histogram(TOKEN_BUCKETS),
            catalog.OUTPUT_TOKEN_QUANTITY: Histogram(TOKEN_BUCKETS),
        }
        self.tokens_total = 0
        self.period = {name: PeriodStat() for name in PERIOD_GAUGES}
        self.exemplars = ExemplarReservoir()
        self._paths: set[str] = set()

    def _path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if path in self._paths:
            return path
        if len(self._paths) >= self.max_paths:
            return OTHER_PATH
        self._paths.add(path)
        return path

    def observe(self, obs: RequestObservation) -> None:
        path = self._path(obs.path)
        key = (obs.code_class, obs.method, path)
        self.requests[key] = self.requests.get(key, 0) + 1
        skey = (str(obs.status), obs.method, path, obs.outcome)
        self.statuses[skey] = self.statuses.get(skey, 0) + 1
        h = self.histograms
        h[catalog.REQUEST_COST].observe((obs.cost_ms,))
        if obs.ttft_ms is not None:
            h[catalog.FIRST_TOKEN_COST].observe((obs.ttft_ms,))
            self.period["first_token"].add((obs.ttft_ms,))
        h[catalog.PER_TOKEN_COST].observe(obs.per_token_ms)
        self.period["per_token"].add(obs.per_token_ms)
        self.period["token_latency"].add(obs.token_latency_ms)
        if obs.input_tokens is not None:
            h[catalog.INPUT_TOKEN_QUANTITY].observe((obs.input_tokens,))
        if obs.output_tokens is not None:
            h[catalog.OUTPUT_TOKEN_QUANTITY].observe((obs.output_tokens,))
            self.tokens_total += obs.output_tokens
        self._exemplars(obs)

    def _exemplars(self, obs: RequestObservation) -> None:
        labels = tuple((k, v) for k, v in ((REQUEST_ID, obs.request_id), (TRACE_ID, obs.trace_id)) if v)
        if not labels:
            return
        ts_ms = round(obs.ts_s * 1000)
        offer, h = self.exemplars.offer, self.histograms
        for name, value in (
            (catalog.REQUEST_COST, obs.cost_ms),
            (catalog.FIRST_TOKEN_COST, obs.ttft_ms),
            (catalog.PER_TOKEN_COST, max(obs.per_token_ms) if obs.per_token_ms else None),
            (catalog.INPUT_TOKEN_QUANTITY, obs.input_tokens),
            (catalog.OUTPUT_TOKEN_QUANTITY, obs.output_tokens),
        ):
            if value is not None:
                offer(name, h[name].bounds, float(value), ts_ms, labels)

    def drain_exemplars(self) -> list[Exemplar]:
        """Each bucket's latest exemplar since the last call, labelled as the bucket's series."""
        return self.exemplars.drain(self.identity)

    def _sample(self, name: str, ts_ms: int, value: float, **extra: str) -> Sample:
        return Sample(to_labels({**self.identity, **extra, METRIC_NAME: name}), ts_ms, float(value))

    def to_samples(
        self,
        ts_ms: int,
        connections: int,
        ws_messages: Mapping[str, int] | None = None,
        upstream_retries: int = 0,
    ) -> list[Sample]:
        """Every series now; the per-period gauges cover the time since the last call and reset.

        ``ws_messages``: WebSocket messages relayed so far by direction, ``upstream_retries``:
        requests retried so far (counters kept by the app).
        """
        s = self._sample
        out = [
            s(catalog.REQUEST_TOTAL, ts_ms, n, code=c, method=m, path=p)
            for (c, m, p), n in self.requests.items()
        ]
        out.extend(
            s(PROXY_REQUESTS_TOTAL, ts_ms, n, status=st, method=m, path=p, outcome=o)
            for (st, m, p, o), n in self.statuses.items()
        )
        for name, hist in self.histograms.items():
            out.extend(s(f"{name}_bucket", ts_ms, n, le=le) for le, n in hist.cumulative())
            out.append(s(f"{name}_sum", ts_ms, hist.total))
            out.append(s(f"{name}_count", ts_ms, hist.count))
        out.append(s(catalog.REQUEST_CONNECT_COUNT, ts_ms, connections))
        out.append(s(catalog.TOKEN_COUNT, ts_ms, self.tokens_total))
        for direction, n in sorted((ws_messages or {}).items()):
            out.append(s(PROXY_WS_MESSAGES_TOTAL, ts_ms, n, direction=direction))
        if upstream_retries:
            out.append(s(PROXY_UPSTREAM_RETRIES_TOTAL, ts_ms, upstream_retries))
        for prefix, stat in self.period.items():
            if stat.count:
                out.append(s(f"infer_service_{prefix}_avg_cost", ts_ms, stat.total / stat.count))
                out.append(s(f"infer_service_{prefix}_min_cost", ts_ms, stat.low))
                out.append(s(f"infer_service_{prefix}_max_cost", ts_ms, stat.high))
        self.period = {name: PeriodStat() for name in PERIOD_GAUGES}
        return out
