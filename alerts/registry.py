"""The rule set an infersight process evaluates: built-in groups from configuration, plus groups
added through the API, kept in a YAML rule file so they survive restarts.

Built-in groups are read-only here (they come from the ``alerts`` section); API groups are
validated on the way in exactly as rule files are, so a bad expression never reaches the evaluator.
An API group belongs to a project (``alerts/projects.py``), or is global ("", the bootstrap admin
key's); two projects may each have a group of the same name. The file keeps each group's
``project_id`` beside its name (Prometheus ignores the extra key). ``on_change(action, group)``
lets the audit trail record each change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from alerts.projects import GLOBAL, OwnedGroup
from alerts.rules import RuleFile, RuleGroup, from_yaml
from model.errors import ConfigError
from model.yaml_text import load_yaml

MAX_GROUPS_PER_PROJECT = 100  # a project's key cannot make the evaluator's round endless
MAX_RULES_PER_GROUP = 100
MAX_NAME_CHARS = 200


class ReadOnlyGroupError(ValueError):
    """The group comes from configuration and cannot be changed through the API."""


def _load(text: str) -> dict[tuple[str, str], RuleGroup]:
    """The API groups of a file written by ``_dump`` (or a plain rule file: every group global)."""
    try:
        data = load_yaml(text) or {}
    except ValueError as err:
        raise ConfigError(str(err)) from None
    items = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ConfigError("groups: must be a list of rule groups")
    groups: dict[tuple[str, str], RuleGroup] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("project_id", GLOBAL), str):
            raise ConfigError(f"groups[{i}]: a rule group with a string project_id")
        project = item.pop("project_id", GLOBAL)
        try:
            group = from_yaml(yaml.safe_dump({"groups": [item]})).groups[0]
        except ConfigError as error:
            raise ConfigError(f"groups[{i}] (project {project!r}): {error}") from error
        groups[(project, group.name)] = group
    return groups


def _check_shape(data: dict[str, Any]) -> None:
    """What ``from_yaml`` takes for granted of a group from a hostile caller: rules a list of
    mappings, their labels and annotations mappings of scalars, nothing nested deeper."""
    rules = data.get("rules") or []
    if not isinstance(rules, list) or len(rules) > MAX_RULES_PER_GROUP:
        raise ConfigError(f"groups[0].rules: a list of at most {MAX_RULES_PER_GROUP} rules")
    for r, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise ConfigError(f"groups[0].rules[{r}]: expected a mapping")
        for key, value in rule.items():
            if key in ("labels", "annotations"):
                if value is not None and (
                    not isinstance(value, dict) or not all(_scalar(v) for v in value.values())
                ):
                    raise ConfigError(f"groups[0].rules[{r}].{key}: expected a mapping of strings")
            elif not _scalar(value):
                raise ConfigError(f"groups[0].rules[{r}].{key}: expected a string")
    if not all(_scalar(v) for k, v in data.items() if k != "rules"):
        raise ConfigError("groups[0]: name and interval must be strings")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _dump(groups: dict[tuple[str, str], RuleGroup]) -> str:
    items = [{**g.to_dict(), **({"project_id": p} if p != GLOBAL else {})} for (p, _), g in groups.items()]
    text: str = yaml.safe_dump({"groups": items}, sort_keys=False, width=1000)
    return text


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
        self.user: dict[tuple[str, str], RuleGroup] = {}
        if path is not None and path.exists():
            self.user = _load(path.read_text())
        self.listeners: list[Callable[[Sequence[OwnedGroup]], None]] = []

    @property
    def owned(self) -> tuple[OwnedGroup, ...]:
        """Every group with its project: the built-in ones (global) first."""
        builtin = tuple(OwnedGroup(g) for g in self.builtin.groups)
        return (*builtin, *(OwnedGroup(g, project) for (project, _), g in self.user.items()))

    @property
    def rules(self) -> RuleFile:
        """Every group, projects' included (so names may repeat)."""
        return RuleFile(tuple(o.group for o in self.owned))

    def is_builtin(self, name: str, project_id: str = GLOBAL) -> bool:
        return project_id == GLOBAL and any(g.name == name for g in self.builtin.groups)

    def group(self, name: str, project_id: str = GLOBAL) -> RuleGroup | None:
        if self.is_builtin(name, project_id):
            return next(g for g in self.builtin.groups if g.name == name)
        return self.user.get((project_id, name))

    def put(self, name: str, data: dict[str, Any], project_id: str = GLOBAL) -> RuleGroup:
        """Add or replace ``project_id``'s group ``name`` from its YAML/JSON mapping; ConfigError
        names the problem."""
        if self.is_builtin(name, project_id):
            raise ReadOnlyGroupError(f"group {name!r} is configured in the alerts section")
        if not name or len(name) > MAX_NAME_CHARS:
            raise ConfigError(f"name: 1 to {MAX_NAME_CHARS} characters")
        if not isinstance(data, dict):
            raise ConfigError("body: expected a rule group mapping")
        _check_shape(data)
        key = (project_id, name)
        if key not in self.user and sum(p == project_id for p, _ in self.user) >= MAX_GROUPS_PER_PROJECT:
            raise ConfigError(f"name: a project has at most {MAX_GROUPS_PER_PROJECT} rule groups")
        group = from_yaml(yaml.safe_dump({"groups": [{**data, "name": name}]})).groups[0]
        action = "update" if key in self.user else "create"
        self.user[key] = group
        self._changed(action, name)
        return group

    def delete(self, name: str, project_id: str = GLOBAL) -> bool:
        if self.is_builtin(name, project_id):
            raise ReadOnlyGroupError(f"group {name!r} is configured in the alerts section")
        if self.user.pop((project_id, name), None) is None:
            return False
        self._changed("delete", name)
        return True

    def _changed(self, action: str, name: str) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(_dump(self.user))
        for listener in self.listeners:
            listener(self.owned)
        if self.on_change:
            self.on_change(action, name)
