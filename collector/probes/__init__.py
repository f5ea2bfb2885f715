"""Startup, readiness and liveness probes (guide §1.9.3): HTTP, TCP or a command, with thresholds.

Results become ``infersight_probe_*`` series and ``Transition`` records (Healthy/Unhealthy) that
the events part turns into pod events.
"""

from collector.probes.checks import CheckResult, check_command, check_http, check_tcp
from collector.probes.runner import ProbeRunner, first_delay_s
from collector.probes.state import HEALTHY, UNHEALTHY, UNKNOWN, ProbeState, Transition

__all__ = [
    "HEALTHY",
    "UNHEALTHY",
    "UNKNOWN",
    "CheckResult",
    "ProbeRunner",
    "ProbeState",
    "Transition",
    "check_command",
    "check_http",
    "check_tcp",
    "first_delay_s",
]
