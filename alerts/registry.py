"""The rule set an infersight process evaluates: built-in groups from configuration, plus groups
added through the API, kept in a YAML rule file so they survive restarts.

Built-in groups are read-only here (they come from the ``alerts`` section); API groups are
validated on the way in exactly as rule files are, so a bad expression never reaches the evaluator.
``on_change(action, group)`` lets the audit trail record each change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from alerts.rules import RuleFile, RuleGroup, from_yaml, to_yaml
from model.errors import ConfigError


class ReadOnlyGroupError(ValueError):
    """The group comes from configuration and cannot be changed through the API."""


class RuleRegistry:
    def __init__(
        self,
        builtin: RuleFile,
        path: Path | None = None,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.builtin = builtin
        self.path = path
        self.on_change = on_change
        self.user: dict[str, RuleGroup] = {}
        if path is not None and path.exists():
            self.user = {g.name: g for g in from_yaml(path.read_text()).groups}
        self.listeners: list[Callable[[RuleFile], None]] = []

    @property
    def rules(self) -> RuleFile:
        return RuleFile((*self.builtin.groups, *self.user.values()))

    def is_builtin(self, name: str) -> bool:
        return any(g.name == name for g in self.builtin.groups)

    def group(self, name: str) -> RuleGroup | None:
        return next((g for g in self.rules.groups if g.name == name), None)

    def put(self, name: str, data: dict[str, Any]) -> RuleGroup:
        """Add or replace group ``name`` from its YAML/JSON mapping; ConfigError names the problem."""
        if self.is_builtin(name):
            raise ReadOnlyGroupError(f"group {name!r} is configured in the alerts section")
        if not isinstance(data, dict):
            raise ConfigError("body: expected a rule group mapping")
        group = from_yaml(yaml.safe_dump({"groups": [{**data, "name": name}]})).groups[0]
        action = "update" if name in self.user else "create"
        self.user[name] = group
        self._changed(action, name)
        return group

    def delete(self, name: str) -> bool:
        if self.is_builtin(name):
            raise ReadOnlyGroupError(f"group {name!r} is configured in the alerts section")
        if self.user.pop(name, None) is None:
            return False
        self._changed("delete", name)
        return True

    def _changed(self, action: str, name: str) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(to_yaml(RuleFile(tuple(self.user.values()))))
        for listener in self.listeners:
            listener(self.rules)
        if self.on_change:
            self.on_change(action, name)
