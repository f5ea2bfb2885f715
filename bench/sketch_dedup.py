"""What reading each sketch row once costs: the TPxx merge with and without the ``LIMIT 1 BY`` collapse.

``python -m bench.sketch_dedup [--dsn chdb:///tmp/x | clickhouse://127.0.0.1:9000/bench] [--series 200]``

Writes ``series`` pods x 6 hours of 10 s windows (a fifth of the rows a second time, as retries
would), then times ``SketchReader.merged`` over the 6 hours in 1 h periods: as shipped (collapse by
row id), without the collapse (wrong counts; the floor), and with a ``GROUP BY`` row id + ``any``
collapse. Prints the median of 5 runs of each.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from collector.window import WindowedSketches, with_row_ids
from store import sketches as sketches_module
from store.open import open_store
from store.sketches import SketchReader, SketchWriter

METRIC = "infer_service_first_token_cost"
HOURS = 6


def _load(store: object, series: int, t0_s: int) -> int:
    writer = SketchWriter(store.backend)  # type: ignore[attr-defined]
    rng = np.random.default_rng(1)
    total = 0
    for hour in range(HOURS):
        windows = WindowedSketches()
        for second in range(0, 3600, 10):
            for pod in range(series):
                labels = {"service_id": "svc", "source": f"pod-{pod}"}
                windows.observe(METRIC, labels, rng.lognormal(4, 1, 4), t0_s + hour * 3600 + second)
        rows = with_row_ids(windows.drain_all())
        writer.write(rows)
        writer.write(rows[: len(rows) // 5])  # retries
        total += len(rows) + len(rows) // 5
    return total


def _time(reader: SketchReader, t0_s: int) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        reader.merged(METRIC, {"service_id": "svc"}, t0_s * 1000, (t0_s + HOURS * 3600) * 1000, 3_600_000)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default="")
    parser.add_argument("--series", type=int, default=200)
    args = parser.parse_args()
    dsn = args.dsn or f"chdb://{tempfile.mkdtemp()}"
    store = open_store(dsn)
    t0_s = 1_700_006_400
    store.backend.execute(f"TRUNCATE TABLE {store.backend.database}.sketches")
    rows = _load(store, args.series, t0_s)
    reader = SketchReader(store.backend)
    shipped = _time(reader, t0_s)
    key = sketches_module.DEDUP_KEY
    sketches_module.DEDUP_KEY = ""  # type: ignore[misc]
    original = sketches_module._SOURCE_SQL
    plain = _time(reader, t0_s)
    sketches_module._SOURCE_SQL = (
        "SELECT window_start_ms, any(scale) AS scale, any(positive_keys) AS "
        "positive_keys, any(positive_counts) AS positive_counts, any(negative_keys) AS negative_keys, "
        "any(negative_counts) AS negative_counts, any(count) AS count, any(sum) AS sum, any(min) AS min, "
        "any(max) AS max, any(zero_count) AS zero_count FROM {db}.{table} WHERE metric_name = "
        "{{metric:String}} AND window_start_ms >= {{{lo}:Int64}} AND window_start_ms < {{{hi}:Int64}}"
        "{extra}{filters} GROUP BY project_id, fingerprint, window_start_ms, row_id"
    )
    grouped = _time(reader, t0_s)
    sketches_module._SOURCE_SQL, sketches_module.DEDUP_KEY = original, key  # type: ignore[misc]
    figures = {"LIMIT 1 BY (shipped)": shipped, "no collapse (wrong)": plain, "GROUP BY + any": grouped}
    print(f"{dsn.split(':')[0]}: {rows} rows, 6 h in 1 h periods, median of 5:")  # noqa: T201 - result
    for name, ms in figures.items():
        print(f"  {name:22} {ms:8.1f} ms")  # noqa: T201 - result
    store.close()


if __name__ == "__main__":
    main()
