"""The figures the demo prints, read back through the PromQL HTTP API like any Grafana panel would."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import httpx

QUANTILES = (("TP50", 0.5), ("TP90", 0.9), ("TP99", 0.99))


@dataclass
class ServiceSummary:
    service_id: str
    service_name: str
    requests_by_code: dict[str, float] = field(default_factory=dict)
    qps: float = math.nan
    ttft_ms: dict[str, float] = field(default_factory=dict)
    tpot_ms: dict[str, float] = field(default_factory=dict)
    # From the proxies' quantile sketches (``/api/v1/sketch_quantiles``), when they measured.
    ttft_sketch_ms: dict[str, float] = field(default_factory=dict)
    sketch_count: int = 0


class PromQLClient:
    """Instant queries against a Prometheus-compatible ``/api/v1/query``."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=30.0, headers=headers)

    def vector(self, query: str, ts_s: float) -> list[tuple[dict[str, str], float]]:
        response = self._client.post("/api/v1/query", data={"query": query, "time": f"{ts_s:.3f}"})
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query failed: {query}: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def sketch_quantiles(self, metric: str, service_id: str, start_s: float, end_s: float) -> dict[str, Any]:
        """One day-long period (epoch-aligned) holds a demo run; a run across midnight gets two."""
        params = {
            "metric": metric,
            "service_id": service_id,
            "start": f"{start_s:.3f}",
            "end": f"{end_s:.3f}",
            "period": "1d",
            "q": ",".join(str(q) for _, q in QUANTILES),
        }
        body = self._client.get("/api/v1/sketch_quantiles", params=params).json()
        if body.get("status") != "success":
            raise RuntimeError(f"sketch query failed: {body.get('errorType')}: {body.get('error')}")
        data: dict[str, Any] = body["data"]
        return data

    def close(self) -> None:
        self._client.close()


def summarise(
    api_url: str,
    services: dict[str, str],
    end_s: float,
    window_s: float,
    headers: dict[str, str] | None = None,
) -> list[ServiceSummary]:
    """Per service: requests by code, QPS and TTFT/TPOT TPxx over the last ``window_s`` seconds.

    Engines' counters and histograms start at zero with the run, so their last value in the window
    is what the run served; ``histogram_quantile`` over those cumulative buckets gives the TPxx of
    every request in the run.
    """
    window = f"{max(1, math.ceil(window_s))}s"
    client = PromQLClient(api_url, headers)
    try:
        out = []
        for service_id, name in services.items():
            sel = f'service_id="{service_id}"'
            summary = ServiceSummary(service_id, name)
            for labels, value in client.vector(
                f"sum by (code) (last_over_time(infer_service_request_total{{{sel}}}[{window}]))", end_s
            ):
                summary.requests_by_code[labels.get("code", "")] = value
            summary.qps = sum(summary.requests_by_code.values()) / window_s
            for target, metric in ((summary.ttft_ms, "first_token"), (summary.tpot_ms, "per_token")):
                for label, q in QUANTILES:
                    result = client.vector(
                        f"histogram_quantile({q}, sum by (le) "
                        f"(last_over_time(infer_service_{metric}_cost_bucket{{{sel}}}[{window}])))",
                        end_s,
                    )
                    target[label] = result[0][1] if result else math.nan
            # Sketch windows are 10 s, aligned to the epoch: start at the window holding the run's start.
            start_s = math.floor((end_s - window_s) / 10) * 10
            periods = client.sketch_quantiles("infer_service_first_token_cost", service_id, start_s, end_s)
            periods = periods.get("periods", [])
            summary.sketch_count = sum(int(p["count"]) for p in periods)
            if len(periods) == 1:
                quantiles = periods[0]["quantiles"]
                summary.ttft_sketch_ms = {
                    label: float(v) for (label, _), v in zip(QUANTILES, quantiles.values(), strict=True)
                }
            out.append(summary)
        return out
    finally:
        client.close()


def format_table(summaries: list[ServiceSummary]) -> str:
    """A fixed-width table, one row per service."""
    header = ["service", "requests by code", "QPS"] + [f"TTFT {q}" for q, _ in QUANTILES]
    header += [f"TPOT {q}" for q, _ in QUANTILES]
    sketched = any(s.ttft_sketch_ms for s in summaries)
    if sketched:
        header += [f"TTFT {q} sketch" for q, _ in QUANTILES]
    rows = [header]
    for s in summaries:
        codes = " ".join(f"{code}={value:.0f}" for code, value in sorted(s.requests_by_code.items())) or "-"
        rows.append(
            [s.service_name, codes, f"{s.qps:.2f}"]
            + [f"{s.ttft_ms.get(q, math.nan):.1f} ms" for q, _ in QUANTILES]
            + [f"{s.tpot_ms.get(q, math.nan):.1f} ms" for q, _ in QUANTILES]
            + ([f"{s.ttft_sketch_ms.get(q, math.nan):.1f} ms" for q, _ in QUANTILES] if sketched else [])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class SloSummary:
    """One SLO over the run, from the proxies' exact counters; ``truth_*`` from the demo's clients
    and engines when it knows them (``-1``: not known)."""

    name: str
    service_name: str
    targets: str
    objective: float
    good: float = 0.0
    bad: float = 0.0
    window_s: float = math.nan
    truth_good: int = -1
    truth_bad: int = -1

    @property
    def attainment(self) -> float:
        return self.good / (self.good + self.bad) if self.good + self.bad else math.nan

    @property
    def goodput(self) -> float:
        return self.good / self.window_s

    @property
    def budget_left(self) -> float:
        return 1 - (1 - self.attainment) / (1 - self.objective)


def summarise_slos(
    api_url: str,
    slos: list[dict[str, Any]],
    service_names: dict[str, str],
    end_s: float,
    window_s: float,
    headers: dict[str, str] | None = None,
) -> list[SloSummary]:
    """Good and bad requests per SLO (``GET /api/v1/slos`` entries) over the last ``window_s``."""
    window = f"{max(1, math.ceil(window_s))}s"
    client = PromQLClient(api_url, headers)
    try:
        counts: dict[tuple[str, str, str], float] = {}
        query = f"sum by (slo, service_id, result) (last_over_time(infersight_slo_requests_total[{window}]))"
        for labels, value in client.vector(query, end_s):
            counts[(labels.get("slo", ""), labels.get("service_id", ""), labels.get("result", ""))] = value
        out = []
        for slo in slos:
            targets = " ".join(
                f"{k.removesuffix('_ms').upper()}<={slo[k]:g}ms" for k in slo if k.endswith("_ms")
            )
            key = (slo["name"], slo["service_id"])
            summary = SloSummary(
                slo["name"],
                service_names.get(slo["service_id"], slo["service_id"]),
                targets or "errors only",
                float(slo["objective"]),
                counts.get((*key, "good"), 0.0),
                counts.get((*key, "bad"), 0.0),
                window_s,
            )
            out.append(summary)
        return out
    finally:
        client.close()


def format_slo_table(summaries: list[SloSummary]) -> str:
    """A fixed-width table, one row per SLO; the ground-truth column when it is known."""
    truth = any(s.truth_good >= 0 for s in summaries)
    header = ["SLO", "service", "targets", "objective", "good", "bad", "attainment", "goodput", "budget left"]
    header += ["ground truth (good/bad)"] if truth else []
    rows = [header]
    for s in summaries:
        row = [
            s.name,
            s.service_name,
            s.targets,
            f"{s.objective * 100:g} %",
            f"{s.good:.0f}",
            f"{s.bad:.0f}",
            f"{s.attainment * 100:.2f} %",
            f"{s.goodput:.2f}/s",
            f"{s.budget_left * 100:.0f} %",
        ]
        if truth:
            row.append(f"{s.truth_good}/{s.truth_bad}" if s.truth_good >= 0 else "-")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
