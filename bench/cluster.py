"""Capacity of the live test cluster: samples/s per server process and per shard, series per shard.

Starts what the cluster tests start (``tests/cluster/live_cluster.py``: one ZooKeeper, ClickHouse
18.16 as 2 shards x 2 replicas, two ``infersight server`` processes on it), then sends remote-write
requests (``--series`` series per request, ``--points`` points per series, as a Prometheus queue
shard would) from ``--senders`` threads per server for ``--seconds``:

1. to one server only: what one server process takes;
2. to both servers: what the pair takes, and what each shard then holds.

"Taken" is acknowledged (204, in the server's ingest log); "stored" is in the cluster, counted
through the Distributed table once everything has landed; the rate is over the time from the
first request until the last sample is stored. Ends with one JSON line.

    python -m bench.cluster --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from query.api.remote_write import encode_write_request
from store.open import open_store
from tests.cluster.live_cluster import ClickHouseCluster, InfersightServer

DATABASE = "infersight"


def _requests(prefix: str, count: int, series: int, points: int, t0_ms: int) -> list[bytes]:
    bodies = []
    for r in range(count):
        batch = [
            (
                {"__name__": "bench_metric", "run": prefix, "sender": str(r % 64), "series": str(s)},
                [(t0_ms + (r // 64) * points * 1000 + p * 1000, float(p)) for p in range(points)],
            )
            for s in range(series)
        ]
        bodies.append(encode_write_request(batch))
    return bodies


def _send(urls: list[str], senders: int, seconds: float, bodies: list[bytes]) -> tuple[int, float]:
    """Requests acknowledged and the wall time; each sender thread takes the next body in turn."""
    lock, next_body, acked = threading.Lock(), [0], [0]
    deadline = time.monotonic() + seconds

    def run(url: str) -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    if next_body[0] >= len(bodies):
                        return
                    body = bodies[next_body[0]]
                    next_body[0] += 1
                response = client.post(
                    f"{url}/api/v1/write", content=body, headers={"Content-Encoding": "snappy"}
                )
                if response.status_code == 204:
                    with lock:
                        acked[0] += 1

    threads = [threading.Thread(target=run, args=(url,)) for url in urls for _ in range(senders)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return acked[0], time.monotonic() - start


def _phase(store, urls: list[str], args: argparse.Namespace, run: str, before: int) -> dict:
    count = int(args.seconds * 400)  # more than 2 cores can take in the time: the clock stops it
    bodies = _requests(run, count, args.series, args.points, 1_700_200_000_000)
    acked, send_s = _send(urls, args.senders, args.seconds, bodies)
    samples = acked * args.series * args.points
    start = time.monotonic() - send_s
    while _count_all(store) < before + samples:
        time.sleep(0.2)
        if time.monotonic() - start > 600:
            break
    landed_s = time.monotonic() - start
    return {
        "servers": len(urls),
        "acked_samples": samples,
        "acked_samples_per_s": round(samples / send_s),
        "stored_samples_per_s": round(samples / landed_s),
    }


def _count_all(store) -> int:
    sql = f"SELECT count() FROM {DATABASE}.samples WHERE metric_name = 'bench_metric'"
    return int(store.backend.query(sql).column(0)[0].as_py())


def _per_shard(cluster: ClickHouseCluster) -> dict:
    from clickhouse_driver import Client

    out = {}
    for shard in (1, 2):
        client = Client("127.0.0.1", port=cluster.nodes[(shard, 1)].tcp_port)
        samples = client.execute(
            f"SELECT count() FROM {DATABASE}.samples_local WHERE metric_name = 'bench_metric'"
        )[0][0]
        series = client.execute(f"SELECT uniqExact(fingerprint) FROM {DATABASE}.series_local")[0][0]
        client.disconnect()
        out[f"shard{shard}"] = {"samples": int(samples), "series": int(series)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per phase, 2 senders per server")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--series", type=int, default=500, help="series per request")
    parser.add_argument("--points", type=int, default=10, help="points per series per request")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.senders = 5.0, 2
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        cluster = ClickHouseCluster(root).start()
        servers: list[InfersightServer] = []
        try:
            store = open_store(cluster.dsn(DATABASE))
            settings = {"store.zookeeper": cluster.zookeeper.hosts, "log_level": "WARNING"}
            settings |= {"store.rollup_interval_s": "0", "audit.digests": "false"}
            servers = [
                InfersightServer(root / f"server-{i}", cluster.dsn(DATABASE, shard=i), settings)
                for i in (1, 2)
            ]
            for server in servers:
                server.launch()
            for server in servers:
                server.wait_ready()
            startup_s = time.monotonic() - started
            one = _phase(store, [servers[0].url], args, "one", 0)
            two = _phase(store, [s.url for s in servers], args, "two", one["acked_samples"])
            shards = _per_shard(cluster)
            store.close()
        finally:
            for server in servers:
                server.stop()
            cluster.stop()
    result = {
        "bench": "cluster",
        "layout": "2 shards x 2 replicas, ClickHouse 18.16, 2 infersight servers, one machine",
        "startup_s": round(startup_s, 1),
        "series_per_request": args.series,
        "points_per_series": args.points,
        "senders_per_server": args.senders,
        "seconds": args.seconds,
        "one_server": one,
        "two_servers": two,
        "per_shard": shards,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
