"""A probe's health from its results: consecutive-success and consecutive-failure thresholds.

Kubernetes semantics (the guide's probes are Kubernetes probes, §1.9.3 / SEED-SPEC §7.1): the
state turns Healthy after ``success_threshold`` passes in a row and Unhealthy after
``failure_threshold`` failures in a row; in between it keeps the last state. Before any verdict,
readiness counts as not ready and liveness as alive (what kubelet assumes); startup is unknown.
Pure: results and times come in, transitions come out.
"""

from __future__ import annotations

from dataclasses import dataclass

HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
UNKNOWN = "Unknown"

INITIAL = {"startup": UNKNOWN, "readiness": UNHEALTHY, "liveness": HEALTHY}


@dataclass(frozen=True, slots=True)
class Transition:
    """A probe's state changed: the pod event reasons ``Healthy``/``Unhealthy`` (T1-55)."""

    probe: str  # startup | readiness | liveness
    state: str  # Healthy | Unhealthy
    previous: str
    ts_s: float
    message: str  # the last check's reason
    consecutive: int  # passes or failures in a row that crossed the threshold


class ProbeState:
    """Folds check results into a state; ``record`` returns a ``Transition`` when it changes.

    >>> s = ProbeState("readiness", success_threshold=1, failure_threshold=3)
    >>> s.record(True, 10.0, "HTTP probe returned 200").state
    'Healthy'
    """

    def __init__(self, probe: str, *, success_threshold: int, failure_threshold: int) -> None:
        self.probe = probe
        self.success_threshold = success_threshold
        self.failure_threshold = failure_threshold
        self.state = INITIAL[probe]
        self.successes = 0
        self.failures = 0

    def record(self, ok: bool, ts_s: float, message: str) -> Transition | None:
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            crossed, target, count = self.successes >= self.success_threshold, HEALTHY, self.successes
        else:
            self.failures, self.successes = self.failures + 1, 0
            crossed, target, count = self.failures >= self.failure_threshold, UNHEALTHY, self.failures
        if not crossed or self.state == target:
            return None
        previous, self.state = self.state, target
        return Transition(self.probe, target, previous, ts_s, message, count)
