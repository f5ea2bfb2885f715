"""A sidecar stand-in for the outage tests: writes numbered batches through a BufferedExporter.

``python -m tests.exporters.outage_producer DSN BUFFER_DIR ACK_FILE PRODUCER [--die-after N]``.
Batch ``i`` is ``SERIES`` samples at ``T0 + i s`` with value ``i``; once ``consume`` has returned
(the batch is on disk), ``i`` is appended to the ack file. It stops producing when ``BUFFER_DIR.stop``
appears, then sends what is left and exits 0. It resumes after the last acknowledged batch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path

from exporters.buffer import BufferedExporter
from exporters.store import StoreExporter
from model.labels import to_labels
from model.series import Sample
from store.open import open_store

T0 = 1_764_000_000_000
SERIES = 20


def batch(producer: str, i: int) -> list[Sample]:
    return [
        Sample(
            to_labels({"__name__": "outage_test", "producer": producer, "k": str(k)}), T0 + i * 1000, float(i)
        )
        for k in range(SERIES)
    ]


def acked(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


async def produce(args: argparse.Namespace) -> None:
    store = open_store(args.dsn)
    folder = Path(args.buffer)
    exporter = BufferedExporter(
        StoreExporter(store.writer), folder, max_batch_samples=400, max_batch_age_s=0.5, retry_interval_s=0.5
    )
    ack_path = Path(args.ack)
    done = acked(ack_path)
    Path(f"{args.buffer}.pending").write_text(str(exporter.pending_samples))
    await exporter.start()
    i = (done[-1] + 1) if done else 0
    stop = Path(f"{args.buffer}.stop")
    with open(ack_path, "a") as ack:
        while not stop.exists():
            if i == args.die_after:
                # Killed inside consume: the batch is on disk (open segment), not sent, not acknowledged.
                exporter.queue.append(batch(args.producer, i))
                os.kill(os.getpid(), signal.SIGKILL)
            await exporter.consume(batch(args.producer, i))
            ack.write(f"{i}\n")
            ack.flush()
            i += 1
            await asyncio.sleep(0.02)
    deadline = time.monotonic() + 120
    while not await exporter.flush() and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await exporter.stop()
    store.close()
    if exporter.pending_samples:
        raise SystemExit(f"{exporter.pending_samples} samples still buffered")


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("dsn", "buffer", "ack", "producer"):
        parser.add_argument(name)
    parser.add_argument("--die-after", type=int)
    asyncio.run(produce(parser.parse_args()))


if __name__ == "__main__":
    main()
