"""TTFT, per-token gaps and request cost from chunk arrival times: pure, the clock is passed in.

Definitions (SEED-SPEC §1.2 rows 5-16, §1.7):

- request cost = from the moment the proxy has the request head to the end of the response;
- TTFT (``infer_service_first_token_cost``) = from the same start to the arrival of the first
  network chunk that completes a payload carrying generated content (sse.py);
- per-token cost (``infer_service_per_token_cost``, TPOT) = the gaps between later content
  chunks, first token excluded. A chunk that completes k content payloads at once (the network
  coalesced them) contributes k equal gaps of (gap / k): sum and count stay right, and no false
  zero gaps appear;
- token latency (``infer_service_token_latency_*``) = every token's latency *including* the first:
  TTFT followed by the per-token gaps (the guide does not say; this is our reading, documented).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.proxy.sse import Usage

MS_PER_S = 1000.0

OUTCOMES = ("ok", "client_disconnect", "upstream_reset", "upstream_refused", "upstream_timeout")


@dataclass(slots=True)
class StreamTimer:
    """Content-chunk times of one response; ``start_s`` from the same monotonic clock.

    >>> t = StreamTimer(start_s=10.0)
    >>> t.content(10.05); t.content(10.06, steps=2)
    >>> round(t.ttft_s, 3), [round(g, 3) for g in t.gaps_s]
    (0.05, [0.005, 0.005])
    """

    start_s: float
    first_s: float | None = None
    last_s: float | None = None
    steps: int = 0
    gaps_s: list[float] = field(default_factory=list)

    def content(self, now_s: float, steps: int = 1) -> None:
        """A chunk completing ``steps`` content payloads arrived at ``now_s``."""
        if steps <= 0:
            return
        if self.first_s is None or self.last_s is None:
            self.first_s = now_s
            self.gaps_s.extend([0.0] * (steps - 1))  # more tokens arrived with the first one
        else:
            gap = (now_s - self.last_s) / steps
            self.gaps_s.extend([gap] * steps)
        self.steps += steps
        self.last_s = now_s

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_s is None else self.first_s - self.start_s


@dataclass(frozen=True, slots=True)
class RequestObservation:
    """One request as the proxy saw it; times in ms, ``ts_s`` the wall time at its end.

    ``input_tokens``/``output_tokens`` come from the engine's usage when it reported one, else
    output is the number of content steps in the stream and input is unknown (``None``).
    ``request_id``/``trace_id`` label its exemplars (exemplars.py; "" for no trace).
    """

    ts_s: float
    method: str
    path: str
    status: int
    cost_ms: float
    streamed: bool = False
    ttft_ms: float | None = None
    per_token_ms: tuple[float, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    outcome: str = "ok"
    request_id: str = ""
    trace_id: str = ""

    @property
    def code_class(self) -> str:
        """The guide's ``code`` label: "2xx", "4xx", "5xx" (T1-60)."""
        return f"{self.status // 100}xx"

    @property
    def error_type(self) -> str | None:
        """The request's failure class as OpenTelemetry's ``error.type`` names one, None when it
        succeeded: the proxy's outcome when the exchange broke (``upstream_timeout``, …), else the
        status code (``"503"``) for a status of 400 or more."""
        if self.outcome != "ok":
            return self.outcome
        return str(self.status) if self.status >= 400 else None

    @property
    def token_latency_ms(self) -> tuple[float, ...]:
        """Every token's latency, the first included: TTFT, then the gaps."""
        return () if self.ttft_ms is None else (self.ttft_ms, *self.per_token_ms)


def observe_request(
    *,
    ts_s: float,
    start_s: float,
    end_s: float,
    method: str,
    path: str,
    status: int,
    timer: StreamTimer | None,
    usage: Usage | None,
    outcome: str = "ok",
    request_id: str = "",
    trace_id: str = "",
) -> RequestObservation:
    """Fold a finished request into one record (``start_s``/``end_s`` on the timer's clock)."""
    ttft_s = timer.ttft_s if timer is not None else None
    output = usage.output_tokens if usage is not None else None
    if output is None and timer is not None and timer.steps:
        output = timer.steps
    return RequestObservation(
        ts_s=ts_s,
        method=method,
        path=path,
        status=status,
        cost_ms=(end_s - start_s) * MS_PER_S,
        streamed=ttft_s is not None,
        ttft_ms=None if ttft_s is None else ttft_s * MS_PER_S,
        per_token_ms=tuple(g * MS_PER_S for g in timer.gaps_s) if timer is not None else (),
        input_tokens=usage.input_tokens if usage is not None else None,
        output_tokens=output,
        outcome=outcome,
        request_id=request_id,
        trace_id=trace_id,
    )
