"""Rule packs: what an inference operator is woken for, each rule with a scenario that proves it.

A ``RuleSpec`` builds its PromQL for a selector and ``Thresholds``; its ``scenario`` builds input
series on which the rule must fire (for the "bad" target) and must not (for the "good" one):
``alerts.generate`` turns scenarios into ``promtool test rules`` files, so every generated rule is
checked by Prometheus' own evaluator.
"""

from __future__ import annotations

from alerts.packs.health import HEALTH
from alerts.packs.resources import RESOURCES
from alerts.packs.service import SERVICE
from alerts.packs.spec import RuleSpec, Scenario

PACKS: dict[str, tuple[RuleSpec, ...]] = {"service": SERVICE, "health": HEALTH, "resources": RESOURCES}

__all__ = ["PACKS", "RuleSpec", "Scenario"]
