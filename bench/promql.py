"""Range-query speed of infersight's PromQL against Prometheus 2.42 and VictoriaMetrics 1.79.

Run: ``python -m bench.promql [--quick] [--hours H] [--scrape-s S] [--step-s S] [--no-rollups]``.
The same generated data (``promql_data``: 100 services x 4 pods, 20 TTFT buckets and 3 request codes
per pod) goes into infersight (chDB through ``SampleWriter``, then one run of the rollup job),
Prometheus (remote write in time order, as if scraped live) and VictoriaMetrics (text import); then
the issue's two queries run over the whole span at a 1-minute step, best of ``--repeat`` on each,
the systems taking turns. infersight runs twice: as configured (rollups of 5 min and wider where
they tile the windows: none at a 1-minute step, so raw samples) and forced onto the 1-minute
rollups.
``--step-s 300`` asks Grafana's kind of coarse step over a long span instead: there the default
engine reads 5-minute buckets where they tile a window, and a third runner reads raw samples only.
Ends with one line of JSON; keys name figure and unit.

The full run is the issue's 15 days, with 60 s scrapes: 200 M samples (10 s scrapes would be
1.2 G, more than this shared 2-core machine takes in a benchmark run; the full run takes ~45 min).
At a 60 s scrape a 1-minute bucket holds one point, so composing from it only costs more; even at
10 s scrapes (the quick run) 1-minute buckets were no faster than raw samples, which is why the
engine's default starts at 5-minute buckets. Spans over 11,000 steps are asked
in pieces, of every system alike (Prometheus refuses more points per series). All systems answer
with the same series; the value sums printed beside each figure show it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from bench import peers
from bench.promql_data import Dataset, generate, prometheus_text_chunks, remote_write_bodies, write_store
from query.api.app import create_app
from query.promql.engine import Engine
from store.open import open_store
from store.rollups import RollupJob

QUERIES = {
    "hq": "histogram_quantile(0.99, sum by (le, service_id) "
    "(rate(infer_service_first_token_cost_bucket[5m])))",
    "rq": "sum by (code) (rate(infer_service_request_total[1m]))",
}
STEP_S = 60  # the step; --step-s asks another (Grafana's coarse steps over long spans)


def _say(message: str) -> None:
    sys.stderr.write(f"[bench.promql] {message}\n")
    sys.stderr.flush()


def _summary(bodies: list[dict[str, Any]]) -> tuple[int, float]:
    """Series count and the sum of all finite values: a cheap check that the answers agree."""
    total, label_sets = 0.0, set()
    for body in bodies:
        assert body["status"] == "success", body
        for series in body["data"]["result"]:
            label_sets.add(tuple(sorted(series["metric"].items())))
            for _, value in series["values"]:
                v = float(value)
                if v == v and abs(v) != float("inf"):
                    total += v
    return len(label_sets), total


# Prometheus refuses more than 11,000 points per series; longer spans are asked in pieces, of
# every system alike (15 days at a 1-minute step: two).
MAX_POINTS = 11_000


def _pieces(data: Dataset, step_s: int) -> list[tuple[int, int]]:
    per_piece = MAX_POINTS * step_s
    return [(t, min(t + per_piece - step_s, data.end_s)) for t in range(data.t0_s, data.end_s + 1, per_piece)]


Runner = Callable[[str], list[dict[str, Any]]]


def _time_interleaved(runners: dict[str, Runner], repeat: int, out: dict[str, Any]) -> None:
    """Best of ``repeat`` per system and query, the systems taking turns within each round.

    The machine is shared: a burst of someone else's work then slows every system in that round,
    instead of whichever one happened to be timed during it.
    """
    for key, query in QUERIES.items():
        best = dict.fromkeys(runners, float("inf"))
        bodies: dict[str, list[dict[str, Any]]] = {}
        for name, run in runners.items():
            bodies[name] = run(query)  # warm: first touch of files and caches is not what is compared
        for _ in range(repeat):
            for name, run in runners.items():
                started = time.perf_counter()
                bodies[name] = run(query)
                best[name] = min(best[name], time.perf_counter() - started)
        for name, seconds in best.items():
            series, total = _summary(bodies[name])
            out[f"{key}_{name}_s"] = round(seconds, 3)
            out[f"{key}_{name}_series"] = series
            out[f"{key}_{name}_value_sum"] = total
            _say(f"{name} {key}: {seconds:.3f} s, {series} series")


def _infersight(
    data: Dataset,
    root: Path,
    out: dict[str, Any],
    stack: ExitStack,
    rollups: bool = True,
    step_s: int = STEP_S,
) -> dict[str, Runner]:
    """Two runners on one store: as configured, and forced onto the 1-minute rollups (``rollups``)."""
    store = open_store(f"chdb://{root / 'chdb'}")
    stack.callback(store.close)
    started = time.perf_counter()
    write_store(data, store.writer)
    out["load_infersight_s"] = round(time.perf_counter() - started, 1)
    _say(f"infersight loaded in {out['load_infersight_s']} s")
    variants = [("infersight", 300_000)]
    if rollups:
        started = time.perf_counter()
        RollupJob(store.backend).run()
        out["rollup_infersight_s"] = round(time.perf_counter() - started, 1)
        _say(f"infersight rolled up in {out['rollup_infersight_s']} s")
        variants.append(("infersight_1m_rollups", 60_000))
        if step_s != STEP_S:  # at a coarser step the default may read 5-minute buckets: raw beside it
            variants.append(("infersight_raw", 2**62))
    runners = {}
    # As configured (buckets of 5 min and more: raw samples at a 1-minute step), forced onto the
    # 1-minute rollups, which tile these queries' windows, and (other steps) raw samples only.
    for name, min_width_ms in variants:
        engine = Engine(
            store.querier, max_samples=2_000_000_000, timeout_s=3600, min_bucket_width_ms=min_width_ms
        )
        client = TestClient(create_app(store, engine))

        def run(query: str, client: TestClient = client) -> list[dict[str, Any]]:
            return [
                client.get(
                    "/api/v1/query_range",
                    # the engine, not the range-answer cache (the data is all settled)
                    params={"query": query, "start": a, "end": b, "step": step_s, "nocache": 1},
                ).json()
                for a, b in _pieces(data, step_s)
            ]

        runners[name] = run
    return runners


def _prometheus(
    data: Dataset, root: Path, out: dict[str, Any], stack: ExitStack, step_s: int = STEP_S
) -> dict[str, Runner]:
    """Prometheus fed by remote write in time order: as if it had scraped the span live."""
    base = stack.enter_context(peers.prometheus(root, root / "tsdb", "--web.enable-remote-write-receiver"))
    started = time.perf_counter()
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    with httpx.Client(timeout=600) as client:
        for body in remote_write_bodies(data):
            client.post(f"{base}/api/v1/write", content=body, headers=headers).raise_for_status()
    out["load_prometheus_s"] = round(time.perf_counter() - started, 1)
    _say(f"prometheus loaded in {out['load_prometheus_s']} s")

    def run(query: str) -> list[dict[str, Any]]:
        return [peers.query_range(base, query, a, b, step_s) for a, b in _pieces(data, step_s)]

    return {"prometheus": run}


def _victoriametrics(
    data: Dataset, root: Path, out: dict[str, Any], stack: ExitStack, step_s: int = STEP_S
) -> dict[str, Runner]:
    started = time.perf_counter()
    base = stack.enter_context(peers.victoriametrics(root, prometheus_text_chunks(data)))
    out["load_victoriametrics_s"] = round(time.perf_counter() - started, 1)
    _say(f"victoria-metrics loaded in {out['load_victoriametrics_s']} s")

    def run(query: str) -> list[dict[str, Any]]:
        return [peers.query_range(base, query, a, b, step_s, "&nocache=1") for a, b in _pieces(data, step_s)]

    return {"victoriametrics": run}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 hours of 10 s scrapes (under a minute)")
    parser.add_argument("--hours", type=float, default=None, help="span of data (default 15 days)")
    parser.add_argument("--scrape-s", type=int, default=None, help="scrape interval (10 quick, 60 full)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds per query (3 quick, 2 full)")
    parser.add_argument("--only", choices=("infersight", "prometheus", "victoriametrics"), action="append")
    parser.add_argument("--step-s", type=int, default=STEP_S, help="query step (default 60, the issue's)")
    parser.add_argument(
        "--no-rollups",
        action="store_true",
        help="skip the rollup job and the forced 1-minute-rollup runner (the default engine reads raw "
        "samples at this step anyway; the job is ~20 min of a full run)",
    )
    args = parser.parse_args(argv)
    hours = args.hours or (2.0 if args.quick else 15 * 24.0)
    scrape_s = args.scrape_s or (10 if args.quick else 60)
    data = generate(hours, scrape_s=scrape_s)
    out: dict[str, Any] = {
        "hours": hours,
        "step_s": args.step_s,
        "scrape_s": scrape_s,
        "series": data.counters.shape[0] * 23,
        "samples": data.samples,
    }
    _say(f"{hours} h, {out['series']} series, {data.samples} samples")
    loaders = {
        "infersight": partial(_infersight, rollups=not args.no_rollups, step_s=args.step_s),
        "prometheus": partial(_prometheus, step_s=args.step_s),
        "victoriametrics": partial(_victoriametrics, step_s=args.step_s),
    }
    with tempfile.TemporaryDirectory(prefix="bench-promql-") as tmp, ExitStack() as stack:
        runners = {}
        for name, load in loaders.items():
            if args.only and name not in args.only:
                continue
            root = Path(tmp) / name
            root.mkdir()
            runners |= load(data, root, out, stack)
        _time_interleaved(runners, args.repeat or (3 if args.quick else 2), out)
    for key in QUERIES:
        theirs = out.get(f"{key}_prometheus_s")
        variants = (("infersight", ""), ("infersight_1m_rollups", "_1m_rollups"), ("infersight_raw", "_raw"))
        for name, suffix in variants:
            ours = out.get(f"{key}_{name}_s")
            if ours and theirs:
                out[f"{key}{suffix}_time_ratio_vs_prometheus"] = round(ours / theirs, 3)
    print(json.dumps(out))  # noqa: T201 - the benchmark's one line of output


if __name__ == "__main__":
    main()
