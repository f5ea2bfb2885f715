"""Write throughput of the store's ``SampleWriter`` against a direct chDB insert of the same rows.

Run: ``python -m bench.ingest [--quick]``. The peer is the floor for any Python writer on chDB: the
same column data handed straight to ``INSERT … SELECT FROM Python(arrow)``; the gap is what
fingerprinting, series bookkeeping and column building cost. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import pyarrow as pa

from model.labels import to_labels
from model.series import Sample
from store.open import open_store
from store.writes import fingerprint


def _batch(n_series: int, n_points: int, t0_ms: int) -> list[Sample]:
    labels = [
        to_labels(
            {"__name__": "infer_service_request_total", "service_id": f"svc-{i % 100}", "source": f"pod-{i}"}
        )
        for i in range(n_series)
    ]
    return [Sample(lab, t0_ms + p * 10_000, float(p)) for p in range(n_points) for lab in labels]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_series, n_points, batches = (400, 25, 4) if args.quick else (4000, 25, 10)
    t0 = 1_700_000_000_000
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"chdb://{tmp}/data")
        data = [_batch(n_series, n_points, t0 + b * n_points * 10_000) for b in range(batches)]
        total = sum(len(b) for b in data)

        start = time.perf_counter()
        for batch in data:
            store.writer.write(batch)
        ours_s = time.perf_counter() - start

        # Peer: the same rows as prepared Arrow columns straight into chDB (no Python per sample).
        tables = [
            pa.table(
                {
                    "metric_name": [s.name for s in batch],
                    "fingerprint": pa.array([fingerprint(s.labels) for s in batch], pa.uint64()),
                    "ts_ms": pa.array([s.ts_ms + 1 for s in batch], pa.int64()),
                    "value": [s.value for s in batch],
                }
            )
            for batch in data
        ]
        start = time.perf_counter()
        for table in tables:
            store.backend.insert("samples", table)
        direct_s = time.perf_counter() - start
        store.close()
    figures = {
        "samples": total,
        "samples_per_s": round(total / ours_s),
        "direct_chdb_samples_per_s": round(total / direct_s),
        "ratio_vs_direct_chdb": round(ours_s / direct_s, 2),
    }
    print(json.dumps(figures))  # noqa: T201 - the benchmark's result line


if __name__ == "__main__":
    main()
