"""Which project a rule group belongs to.

A project's group is evaluated as a read key of that project would query (only its series), and
every alert it raises carries ``project_id``, so its ``ALERTS`` series, API entries, notifications
and events are that project's. Global groups (configuration, or added by the bootstrap admin key)
read every project, as before; their alerts belong to whichever project their labels name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.rules import AlertRule, RuleFile, RuleGroup

GLOBAL = ""
PROJECT_LABEL = "project_id"


@dataclass(frozen=True, slots=True)
class OwnedGroup:
    group: RuleGroup
    project_id: str = GLOBAL

    @property
    def key(self) -> str:
        """The group's own key (its next evaluation time), distinct across projects as ``rule_key``."""
        return (
            self.group.name if self.project_id == GLOBAL else json.dumps([self.project_id, self.group.name])
        )

    def rule_key(self, index: int, rule: AlertRule) -> str:
        """The rule's key in the evaluator's state: a global rule's as it always was
        (``group/index/alert``); a project's a JSON list, which no global key can equal (those end
        in an alert name, never in ``]``), so two projects' groups of one name never share state."""
        if self.project_id == GLOBAL:
            return f"{self.group.name}/{index}/{rule.alert}"
        return json.dumps([self.project_id, self.group.name, index, rule.alert])


def owned(rules: RuleFile | Sequence[OwnedGroup]) -> tuple[OwnedGroup, ...]:
    """``rules`` as owned groups: a plain rule file's groups are global."""
    if isinstance(rules, RuleFile):
        return tuple(OwnedGroup(g) for g in rules.groups)
    return tuple(rules)


def alert_project(labels: dict[str, str]) -> str:
    """The project an alert belongs to: its ``project_id`` label ("" when it names none)."""
    return labels.get(PROJECT_LABEL, GLOBAL)
