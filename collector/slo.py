"""Per-request SLO judgement and its counters: exact good/bad counts, not estimates from buckets.

``judge(slo, obs)`` is a plain function of one ``RequestObservation``: the ingress proxy feeds it
today; anything that can describe a finished request the same way (an engine's OpenTelemetry
span: start, first token, later tokens, end, status) feeds it the same way, passing the span's
model as ``model``. ``SloCounter`` is the proxy's consumer of those judgements, beside the
sketches (``feed_observer``), and hands the series on with the proxy's flush:

- ``infersight_slo_requests_total{slo, result="good"|"bad", <identity>}``
- ``infersight_slo_target_misses_total{slo, target="ttft"|"tpot"|"cost"|"error", <identity>}``
- ``infersight_slo_objective{slo, <identity>}`` (a gauge: the objective, for budget and burn-rate
  panels that must not be generated per SLO)

Goodput = ``rate(infersight_slo_requests_total{result="good"})``; attainment = good / all.

Definitions, from the client's side: TTFT is the proxy's first-token time, or for a response that
was not streamed the whole response time (its first token reaches the client with the last); TPOT
is the request's mean gap between later tokens (not judged when it had fewer than two); cost is
the whole request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.proxy.timing import RequestObservation
from model.labels import METRIC_NAME, to_labels
from model.series import Sample
from model.slo import ERROR_TARGET, TARGETS, Slo

REQUESTS_TOTAL = "infersight_slo_requests_total"
TARGET_MISSES_TOTAL = "infersight_slo_target_misses_total"
OBJECTIVE = "infersight_slo_objective"
RESULTS = ("good", "bad")


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one request fared against one SLO: the targets it missed (none: good)."""

    misses: tuple[str, ...]

    @property
    def good(self) -> bool:
        return not self.misses


def applies(slo: Slo, service_id: str, path: str, model: str | None = None) -> bool:
    """Whether ``slo`` covers a request of ``service_id`` to ``path`` (for ``model``, if known).

    An SLO scoped to a model needs the request's model: the proxy does not read bodies, so such
    an SLO counts only what a source that knows the model (a trace) judges."""
    if slo.service_id != service_id:
        return False
    if slo.route and not path.split("?", 1)[0].startswith(slo.route):
        return False
    return not slo.model or slo.model == model


def _bad_error(slo: Slo, obs: RequestObservation) -> bool:
    classes = slo.bad_errors
    return obs.code_class in classes or str(obs.status) in classes or obs.outcome in classes


def judge(slo: Slo, obs: RequestObservation) -> Verdict | None:
    """The verdict on ``obs``, or None when the SLO leaves it out (an error it does not count)."""
    if _bad_error(slo, obs):
        return Verdict((ERROR_TARGET,))
    if obs.status >= 400:
        return None
    seen = {
        "ttft": obs.ttft_ms if obs.ttft_ms is not None else obs.cost_ms,
        "tpot": sum(obs.per_token_ms) / len(obs.per_token_ms) if obs.per_token_ms else None,
        "cost": obs.cost_ms,
    }
    targets = slo.targets
    misses = tuple(
        name
        for name in TARGETS
        if name in targets and (value := seen[name]) is not None and value > targets[name]
    )
    return Verdict(misses)


class SloCounter:
    """Counts every observed request against the SLOs of this pod's service.

    ``slos`` is asked on every request, so SLOs changed through the API apply at once.

    >>> counter = SloCounter(lambda: (Slo("fast", "svc", ttft_ms=500),), {"service_id": "svc"})
    >>> counter.observe(RequestObservation(ts_s=0, method="POST", path="/v1/completions",
    ...                                    status=200, cost_ms=900.0, ttft_ms=600.0))
    >>> counter.requests[("fast", "bad")]
    1
    """

    def __init__(self, slos: Callable[[], Sequence[Slo]], identity: dict[str, str]) -> None:
        self.slos = slos
        self.identity = dict(identity)
        self.service_id = identity.get("service_id", "")
        self.requests: dict[tuple[str, str], int] = {}
        self.misses: dict[tuple[str, str], int] = {}

    def observe(self, obs: RequestObservation) -> None:
        for slo in self.slos():
            if not applies(slo, self.service_id, obs.path):
                continue
            verdict = judge(slo, obs)
            if verdict is None:
                continue
            key = (slo.name, "good" if verdict.good else "bad")
            self.requests[key] = self.requests.get(key, 0) + 1
            for target in verdict.misses:
                self.misses[(slo.name, target)] = self.misses.get((slo.name, target), 0) + 1

    def to_samples(self, ts_ms: int) -> list[Sample]:
        """Every counter of every SLO of this service, zeros included (so a first bad request
        is an increase, not a new series), and each SLO's objective."""
        out: list[Sample] = []
        for slo in self.slos():
            if slo.service_id != self.service_id:
                continue
            base = {**self.identity, "slo": slo.name}
            out.append(Sample(to_labels({**base, METRIC_NAME: OBJECTIVE}), ts_ms, slo.objective))
            for result in RESULTS:
                n = self.requests.get((slo.name, result), 0)
                labels = {**base, "result": result, METRIC_NAME: REQUESTS_TOTAL}
                out.append(Sample(to_labels(labels), ts_ms, float(n)))
            for target in (*slo.targets, ERROR_TARGET):
                n = self.misses.get((slo.name, target), 0)
                labels = {**base, "target": target, METRIC_NAME: TARGET_MISSES_TOTAL}
                out.append(Sample(to_labels(labels), ts_ms, float(n)))
        return out
