"""A sidecar stand-in shipping all three kinds through the sidecar's own exporters to a server.

``python -m tests.exporters.sidecar_producer SHIP_TO BUFFER_DIR STATE_FILE PRODUCER BASE_S [--die-after N]``

Batch ``i`` is, for producer ``P``: one closed sketch window (values ``batch_values(P, i)``, the
window ``[BASE_S + 10 i, +10 s)``), one platform event (message ``"P batch i"``), one Kubernetes
event (a core/v1 Event object of uid ``P-i``; batch ``i`` also re-lists batch ``i - 1``'s object,
as a watch restarted after a 410 Gone does) and ``SAMPLES`` samples at ``BASE_S + 10 i``. All of it
goes through ``infersight.exporting.SidecarExporters`` over ``exporters.http.HttpExporter``: the
path ``infersight sidecar`` ships by. ``i`` is written to ``STATE_FILE`` once every kind's
``consume`` has returned (the batch is on disk).

With ``--die-after N`` it produces batch ``N``, then sends everything buffered, keeps it on disk
as if the process died before deleting it (the store has it, the buffer does not know), and
SIGKILLs itself: the restart replays what the store already took. It stops producing when
``BUFFER_DIR.stop`` appears, sends what is left and exits 0; it resumes after the last batch written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import numpy as np

from collector.k8s_events import to_event
from collector.window import WindowedSketches
from exporters.http import HttpExporter
from exporters.sender import SendWith
from infersight.config import BufferSection, Config
from infersight.exporting import SidecarExporters
from model.events import POD, Event, EventObject
from model.labels import to_labels
from model.series import Sample

METRIC = "infer_service_first_token_cost"
SERVICE = "svc-once"
SAMPLES = 3


def batch_values(producer: str, i: int) -> np.ndarray:
    return np.random.default_rng([ord(c) for c in producer] + [i]).lognormal(4.0, 1.0, 7)


def pod(producer: str) -> str:
    return f"pod-{producer}"


def k8s_object(producer: str, i: int, base_s: int) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base_s + 10 * i))
    return {
        "metadata": {"uid": f"{producer}-{i}", "namespace": "ns", "name": f"{pod(producer)}.{i}"},
        "involvedObject": {"kind": "Pod", "name": pod(producer)},
        "reason": "Pulled",
        "message": f"{producer} image pulled {i}",
        "type": "Normal",
        "count": 1,
        "lastTimestamp": stamp,
    }


def written(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _batch(producer: str, i: int, base_s: int) -> tuple[list, list[Event], list[Sample]]:
    windows = WindowedSketches()
    labels = {"service_id": SERVICE, "source": pod(producer)}
    windows.observe(METRIC, labels, batch_values(producer, i), base_s + 10 * i + 1)
    identity = EventObject(service_id=SERVICE, pod=pod(producer))
    events = [Event(POD, "Normal", "Started", f"{producer} batch {i}", identity, (base_s + 10 * i) * 1000)]
    for j in (i - 1, i) if i > 0 else (i,):
        k8s = to_event(k8s_object(producer, j, base_s), identity)
        assert k8s is not None
        events.append(k8s)
    samples = [
        Sample(
            to_labels({"__name__": "once_test", "producer": producer, "k": str(k)}),
            (base_s + 10 * i) * 1000,
            i,
        )
        for k in range(SAMPLES)
    ]
    return windows.drain_all(), events, samples


async def produce(args: argparse.Namespace) -> None:
    config = Config(buffer=BufferSection(dir=args.buffer, max_batch_samples=40, max_batch_age_s=0.3))
    http = HttpExporter(args.ship_to, timeout_s=5)
    exporters = SidecarExporters.build(config, http, SendWith(http.send_sketches), SendWith(http.send_events))
    for exporter in exporters.all():
        exporter.retry_interval_s = 0.3
    state = Path(args.state)
    done = written(state)
    Path(f"{args.buffer}.pending").write_text(str(sum(e.pending_samples for e in exporters.all())))
    await exporters.start()
    i = (done[-1] + 1) if done else 0
    stop = Path(f"{args.buffer}.stop")
    with open(state, "a") as out:
        while not stop.exists():
            rows, events, samples = _batch(args.producer, i, args.base_s)
            await exporters.sketches.consume(rows)
            await exporters.events.consume(events)
            await exporters.samples.consume(samples)
            out.write(f"{i}\n")
            out.flush()
            if i == args.die_after:
                await _die_after_sending(exporters)
            i += 1
            await asyncio.sleep(0.05)
    deadline = time.monotonic() + 120
    while not await exporters.flush() and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    await exporters.stop()
    await http.aclose()
    left = sum(e.pending_samples for e in exporters.all())
    if left:
        raise SystemExit(f"{left} items still buffered")


async def _die_after_sending(exporters: SidecarExporters) -> None:
    """Send everything, keep it all on disk (as if killed just before each delete), die."""
    sent: set[int] = set()

    def keep(path: Path, n: int) -> None:
        sent.add(n)
        raise _KeptError(path)

    for n, exporter in enumerate(exporters.all()):
        exporter.queue.remove = lambda path, n=n: keep(path, n)  # type: ignore[method-assign]
    deadline = time.monotonic() + 60
    while len(sent) < 3 and time.monotonic() < deadline:
        for exporter in exporters.all():
            with contextlib.suppress(_KeptError):
                await exporter.flush()
        await asyncio.sleep(0.1)
    os.kill(os.getpid(), signal.SIGKILL)


class _KeptError(RuntimeError):
    """Raised instead of deleting a sent segment: the send loop stops, the segment stays."""


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("ship_to", "buffer", "state", "producer"):
        parser.add_argument(name)
    parser.add_argument("base_s", type=int)
    parser.add_argument("--die-after", type=int)
    asyncio.run(produce(parser.parse_args()))


if __name__ == "__main__":
    main()
