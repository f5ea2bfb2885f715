"""Added TTFT and throughput of streamed requests through the ingress proxy, against direct.

Run: ``python -m bench.proxy [--quick]``. Three processes: the simulator (a fake vLLM engine),
the proxy (``python -m collector.proxy``) in front of it, and this one, which does nothing but
generate the load while a run is measured. At 1, 50 and 200 concurrent streams, each stream sends
streamed chat requests back to back on its own keep-alive connection for a fixed time, first
straight to the simulator, then through the proxy; before the clock starts, every stream sends one
unmeasured request (opening the client's connections and warming the proxy's upstream pool, as in
steady state). Streams then start staggered, stream i at i/N of one request's length, and requests
count once all of them run: with the simulator's fixed delays, streams started together stay in
lockstep, every request of a level arriving, getting its first token and ending at the same moment,
so a p99 measured which wave a stall of the shared machine hit (``--lockstep`` keeps that method,
the one before 2026-11-25, for comparison). TTFT is taken when the first read carrying generated
text arrives (a non-empty ``"content":"``), from just before the request is written; completed
requests are counted. Added TTFT = proxy percentile - direct percentile; throughput ratio =
proxied requests/s / direct requests/s. ``cN_proxy_cpu_ms_per_req`` is the proxy process's CPU
time (user + system) per completed request over the measured window: the proxy's own cost, which
the machine's other load changes less than it changes latencies (``cN_sim_…`` and ``cN_client_…``
give the simulator's and the load generator's, from the direct run, for scale). ``--streams 1,50``
runs only those levels. Ends with one JSON line.

The load generator is a bare ``asyncio.Protocol`` that writes one prebuilt request and reads just
enough HTTP/1.1 (status, content-length or chunked framing) to find each response's end: ~1 ms of
CPU per streamed request (18 chunks) with asyncio's event loop, where httpx took 15-19 ms at 200
streams and was itself the bottleneck on the shared 2-core machine. All three processes run on the
loop infersight's own processes use (``collector.serve.run_event_loop``: uvloop since
2026-12-06; before, asyncio's), so the load generator and the simulator leave the proxy more of the
machine than they did.

All three also set up the garbage collector as infersight's processes do (``collector.serve.tune_gc``:
start-up heap frozen, gen-0 threshold 10 000; ``INFERSIGHT_GC=default`` in the environment keeps
Python's defaults in all three, the method before 2026-12-06). With the defaults, the simulator's
gen-2 collections (60-85 ms, about one per 10 s at 200 streams) and gen-1 ones (up to ~27 ms) were
most of the 200-stream TTFT tail, of the direct run and the proxied run alike, so the added p99
(a difference of two such tails) swung by tens of ms between runs. ``cN_direct_n`` and
``cN_proxied_n`` are the requests each percentile is taken over: at 1 stream ~28 per 20 s run, so
its p99 is the slowest request (run ``--streams 1`` with a longer ``--duration-s`` for more).

A level is *saturated* when the direct run is not paced by the simulator: fewer than 95 % of the
requests/s its fixed delays allow (``cN_direct_paced_ratio``: streams / 0.7 s) or a direct TTFT p50
over 1.5 x the simulator's 100 ms. There, the machine (not the proxy) decides both runs' figures,
so ``cN_direct_saturated`` = 1 and the level stays out of the headline. The goal's figures (the collector's:
<= 1 ms added TTFT at p99 and >= 90 % of direct throughput, at 1, 50 and 200 streams) are the
headline ``added_ttft_p99_ms`` (max over unsaturated levels) and ``throughput_ratio_vs_direct``
(min over unsaturated levels); ``headline_max_streams`` says the highest level they cover and
``saturated_levels_n`` how many levels were left out (the headline is null, and
``headline_max_streams`` 0, when every level was saturated). The goal is shown only by a run with
``saturated_levels_n`` = 0; the per-level ``cN_added_ttft_p99_ms`` and
``cN_throughput_ratio_vs_direct`` are always reported. With ``--quick`` (4 s) a single stream
completes ~6 requests per run, so its p99 is its slowest request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from collector.serve import run_event_loop

PATH = "/v1/chat/completions"
BODY = {
    "model": "sim-model",
    "messages": [{"role": "user", "content": "tell me a story"}],
    "stream": True,
    "max_tokens": 16,
}
# fixed delays (sigma 0): the TTFT percentiles of two runs then differ by the proxy, not by the draw;
# ~0.7 s per request keeps 200 streams at ~285 req/s
TTFT_MS, ITL_MS, TOKENS = 100, 40, 16
PACED_S = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000  # one request's length when the simulator paces it
SIM_ARGS = [
    *(
        "--ttft-median-ms",
        str(TTFT_MS),
        "--ttft-sigma",
        "0",
        "--itl-median-ms",
        str(ITL_MS),
        "--itl-sigma",
        "0",
    ),
    *("--output-tokens-min", str(TOKENS), "--output-tokens-max", str(TOKENS)),
    *("--max-num-seqs", "1024", "--seed", "1"),
]
MIN_PACED_RATIO = 0.95  # direct req/s below this share of streams / PACED_S: the level is saturated
MAX_DIRECT_TTFT_P50_MS = 1.5 * TTFT_MS  # or a direct median TTFT above this
REQUEST_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout_s}s")


@contextmanager
def _process(args: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


ERRORS: list[str] = []


class ResponseError(Exception):
    """A response that is not 200, or not HTTP/1.1 this reader understands."""


def _request(port: int) -> bytes:
    body = json.dumps(BODY, separators=(",", ":")).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\naccept: text/event-stream\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_HEAD, _SIZE, _DATA, _TRAILER, _LENGTH, _IDLE = range(6)
_CONTENT, _EMPTY = b'"content":"', b'"content":""'


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one exchange at a time; the response is framed, not decoded.

    ``exchange`` writes a request and returns a future: the TTFT in seconds (``None`` if no
    generated text came) once the response's end has arrived. The TTFT is taken in
    ``data_received``, on the first read whose bytes (with the last 16 bytes read before, so a split
    marker is found) hold a non-empty ``"content":"``; the body is otherwise only skipped over.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = _IDLE
        self.left = 0  # bytes of the current chunk (+ its CRLF) or body still to skip
        self.status = 0
        self.keep_alive = True
        self.t0 = 0.0
        self.first: float | None = None
        self.tail = b""
        self.waiter: asyncio.Future[float | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionResetError("connection closed before the end of the response"))

    def exchange(self, request: bytes) -> asyncio.Future[float | None]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.state, self.first, self.tail = _HEAD, None, b""
        self.t0 = time.perf_counter()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if self.first is None:
            probe = self.tail + data
            if _CONTENT in probe:
                at = (cleaned := probe.replace(_EMPTY, b"")).find(_CONTENT)
                if 0 <= at < len(cleaned) - len(_CONTENT):  # at the very end: empty or not, next read says
                    self.first = time.perf_counter() - self.t0
            self.tail = probe[-16:]
        self.buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(ResponseError(f"unreadable response: {exc}"))

    def _parse(self) -> None:
        buf = self.buf
        while buf:
            state = self.state
            if state in (_DATA, _LENGTH):
                n = min(self.left, len(buf))
                del buf[:n]
                self.left -= n
                if self.left:
                    return
                if state == _LENGTH:
                    self._done()
                    return
                self.state = _SIZE
            elif state in (_SIZE, _TRAILER):
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                if state == _TRAILER:
                    if not line:
                        self._done()
                        return
                elif (size := int(line.split(b";", 1)[0], 16)) == 0:
                    self.state = _TRAILER
                else:
                    self.left, self.state = size + 2, _DATA
            elif state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(buf[:end]).split(b"\r\n")
                del buf[: end + 4]
                self._head(lines)
            else:
                raise ValueError("bytes after the end of the response")

    def _head(self, lines: list[bytes]) -> None:
        self.status = int(lines[0].split(b" ", 2)[1])
        chunked, length = False, -1
        self.keep_alive = lines[0].startswith(b"HTTP/1.1")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"transfer-encoding":
                chunked = value.endswith(b"chunked")
            elif name == b"content-length":
                length = int(value)
            elif name == b"connection":
                self.keep_alive = value != b"close"
        if chunked:
            self.state = _SIZE
        elif length >= 0:
            self.left, self.state = length, _LENGTH
            if length == 0:
                self._done()
        else:
            raise ValueError("neither chunked nor a content-length")

    def _done(self) -> None:
        self.state = _IDLE
        waiter, self.waiter = self.waiter, None
        if not self.keep_alive and self.transport is not None:
            self.transport.close()
        if waiter is None or waiter.done():
            return
        if self.status == 200:
            waiter.set_result(self.first)
        else:
            waiter.set_exception(ResponseError(f"HTTP {self.status}"))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if self.transport is not None:
            self.transport.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class _Stream:
    """One stream: requests back to back on one connection, reopened after an error."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port = port
        self.request = request
        self.conn: _Connection | None = None

    async def once(self) -> float | None:
        """The TTFT in ms of one request; ``None`` if it failed (counted in ``ERRORS``) or had no text."""
        try:
            if self.conn is None or self.conn.transport is None or self.conn.transport.is_closing():
                _, self.conn = await asyncio.get_running_loop().create_connection(
                    _Connection, "127.0.0.1", self.port
                )
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                first = await self.conn.exchange(self.request)
        except (OSError, TimeoutError, ResponseError) as exc:  # counted and reported, the run goes on
            ERRORS.append(type(exc).__name__)
            self.close()
            return None
        return None if first is None else first * 1000

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.abort()
        self.conn = None


async def _load(
    port: int, streams: int, duration_s: float, pids: dict[str, int], *, lockstep: bool = False
) -> tuple[list[float], float, dict[str, float]]:
    """(TTFTs in ms, completed requests per second, CPU ms per request by process) of ``streams``
    back-to-back loops; the CPU of each process in ``pids`` (and this one's, ``client``) is taken
    over the measured window only.

    Staggered (the default): stream i starts i/streams of a request's length (``PACED_S``) after the
    warm-up, and requests count from one request's length after it, when every stream is running;
    with fixed simulator delays each stream then keeps its phase, as independent clients would.
    ``lockstep``: every stream starts at once, so with fixed delays all of them send, get their first
    token and finish together, level after level (the method before 2026-11-25: a p99 then measures
    which wave a stall of the machine hits).
    """
    request = _request(port)
    clients = [_Stream(port, request) for _ in range(streams)]
    await asyncio.gather(*(c.once() for c in clients))  # warm-up, unmeasured: connections, upstream pool
    ttfts: list[float] = []
    start = time.perf_counter() + (0.0 if lockstep else PACED_S)
    deadline = start + duration_s

    async def loop(i: int, client: _Stream) -> None:
        if not lockstep:
            await asyncio.sleep(i * PACED_S / streams)
        while (t0 := time.perf_counter()) < deadline:
            ttft = await client.once()
            if ttft is not None and t0 >= start:
                ttfts.append(ttft)

    async def cpu_at(t: float) -> dict[str, float]:
        await asyncio.sleep(max(0.0, t - time.perf_counter()))
        return {**{name: _cpu_s(pid) for name, pid in pids.items()}, "client": time.process_time()}

    # the window is [start, deadline): requests started in it per second, and CPU spent in it per
    # such request (steady state: as much work of requests in flight enters as leaves it)
    at_start, at_deadline = asyncio.create_task(cpu_at(start)), asyncio.create_task(cpu_at(deadline))
    await asyncio.gather(*(loop(i, c) for i, c in enumerate(clients)))
    before, after = await at_start, await at_deadline
    # lockstep: as before 2026-11-25, until the last wave ends (its waves fill the time to it)
    window_s = time.perf_counter() - start if lockstep else duration_s
    for c in clients:
        c.close()
    done = max(1, len(ttfts))
    return (
        ttfts,
        len(ttfts) / window_s,
        {name: 1000 * (after[name] - before[name]) / done for name in after},
    )


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(
    port: int, streams: int, duration_s: float, pids: dict[str, int], *, lockstep: bool = False
) -> tuple[list[float], float, dict[str, float]]:
    """``_load`` in its own event loop, run as the proxy and the simulator run theirs (uvloop, GC
    set up before the run starts)."""
    return run_event_loop(_load(port, streams, duration_s, pids, lockstep=lockstep))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="4 s per run instead of 20 s")
    parser.add_argument("--duration-s", type=float, default=None, help="seconds per run (overrides --quick)")
    parser.add_argument(
        "--streams", type=lambda v: [int(n) for n in v.split(",")], default=[1, 50, 200],
        help="concurrency levels, comma-separated (default 1,50,200)",
    )  # fmt: skip
    parser.add_argument(
        "--lockstep", action="store_true",
        help="start every stream at once (the method before 2026-11-25) instead of staggered",
    )  # fmt: skip
    args = parser.parse_args()
    duration_s = args.duration_s or (4.0 if args.quick else 20.0)
    sim_port, proxy_port = _free_port(), _free_port()
    figures: dict[str, float | None] = {}
    unsaturated: list[int] = []
    with (
        _process(["-m", "simulator", "--port", str(sim_port), *SIM_ARGS], sim_port) as sim,
        _process(
            ["-m", "collector.proxy", "--listen", f"127.0.0.1:{proxy_port}",
             "--upstream", f"http://127.0.0.1:{sim_port}"],
            proxy_port,
        ) as proxy,
    ):  # fmt: skip
        for streams in args.streams:
            pids = {"sim": sim.pid, "proxy": proxy.pid}
            direct, direct_rps, direct_cpu = _measured(
                sim_port, streams, duration_s, pids, lockstep=args.lockstep
            )
            proxied, proxied_rps, proxied_cpu = _measured(
                proxy_port, streams, duration_s, pids, lockstep=args.lockstep
            )
            c = f"c{streams}_"
            paced_ratio = direct_rps / (streams / PACED_S)
            saturated = paced_ratio < MIN_PACED_RATIO or not _pct(direct, 0.5) <= MAX_DIRECT_TTFT_P50_MS
            if not saturated:
                unsaturated.append(streams)
            figures[c + "direct_ttft_p50_ms"] = round(_pct(direct, 0.5), 3)
            figures[c + "direct_ttft_p99_ms"] = round(_pct(direct, 0.99), 3)
            figures[c + "added_ttft_p50_ms"] = round(_pct(proxied, 0.5) - _pct(direct, 0.5), 3)
            figures[c + "added_ttft_p99_ms"] = round(_pct(proxied, 0.99) - _pct(direct, 0.99), 3)
            figures[c + "direct_n"], figures[c + "proxied_n"] = len(direct), len(proxied)
            figures[c + "direct_req_per_s"] = round(direct_rps, 1)
            figures[c + "direct_paced_ratio"] = round(paced_ratio, 3)
            figures[c + "direct_saturated"] = int(saturated)
            figures[c + "throughput_ratio_vs_direct"] = round(proxied_rps / max(direct_rps, 1e-9), 3)
            # CPU per completed request: the proxy's own cost, whatever the machine's contention
            figures[c + "proxy_cpu_ms_per_req"] = round(proxied_cpu["proxy"], 3)
            figures[c + "sim_cpu_ms_per_req"] = round(direct_cpu["sim"], 3)
            figures[c + "client_cpu_ms_per_req"] = round(direct_cpu["client"], 3)
    # the goal's figures, over the levels where the simulator (not the machine) paced the direct run
    added = [figures[f"c{n}_added_ttft_p99_ms"] for n in unsaturated]
    ratios = [figures[f"c{n}_throughput_ratio_vs_direct"] for n in unsaturated]
    figures["added_ttft_p99_ms"] = max(v for v in added if v is not None) if added else None
    figures["throughput_ratio_vs_direct"] = min(v for v in ratios if v is not None) if ratios else None
    figures["headline_max_streams"] = max(unsaturated, default=0)
    figures["saturated_levels_n"] = len(args.streams) - len(unsaturated)
    figures["duration_s_per_run"] = duration_s
    figures["client_errors"] = len(ERRORS)
    figures["lockstep"] = int(args.lockstep)
    print(json.dumps(figures))  # noqa: T201 - the benchmark's result line


if __name__ == "__main__":
    main()
