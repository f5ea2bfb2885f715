"""The SLOs in force: those of the configuration (read-only) and those added through the API, kept
in a JSON file so they survive restarts.

An SLO belongs to a project (its ``project_id``; "" for one the configuration or the bootstrap
admin key made for every project); two projects may each have an SLO of the same name. Listeners
hear every change: the sidecars' judges read ``slos`` per request and the alert evaluator gets
the SLOs' burn-rate groups anew.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model.errors import ConfigError
from model.slo import Slo

MAX_SLOS_PER_PROJECT = 100


class ReadOnlySloError(ValueError):
    """The SLO comes from configuration and cannot be changed through the API."""


class SloRegistry:
    """``registry.slos`` now; ``put``/``delete`` for the API.

    >>> registry = SloRegistry((Slo("chat", "svc", ttft_ms=500),))
    >>> [s.name for s in registry.slos]
    ['chat']
    """

    def __init__(self, configured: Sequence[Slo] = (), path: Path | None = None) -> None:
        self.configured = {(s.project_id, s.name): s for s in configured}
        self.path = path
        self.user: dict[tuple[str, str], Slo] = {}
        if path is not None and path.exists():
            self.user = _load(path.read_text())
        self.slos: tuple[Slo, ...] = ()
        self.listeners: list[Callable[[tuple[Slo, ...]], None]] = []
        self._refresh()

    def is_configured(self, name: str, project_id: str) -> bool:
        return (project_id, name) in self.configured

    def get(self, name: str, project_id: str) -> Slo | None:
        return self.configured.get((project_id, name)) or self.user.get((project_id, name))

    def of_project(self, project_id: str | None) -> list[Slo]:
        """A project's SLOs (every SLO with None)."""
        return [s for s in self.slos if project_id is None or s.project_id == project_id]

    def put(self, name: str, data: Any, project_id: str) -> tuple[Slo, str]:
        """Add or replace ``project_id``'s SLO ``name`` from its mapping; returns it and whether it
        was a "create" or an "update". ConfigError names the problem."""
        if self.is_configured(name, project_id):
            raise ReadOnlySloError(f"SLO {name!r} is configured in the slos section")
        if not isinstance(data, dict):
            raise ConfigError("body: expected an SLO mapping")
        for key in ("name", "project_id"):
            if key in data and data[key] != {"name": name, "project_id": project_id}[key]:
                raise ConfigError(f"{key}: given by the path and the key, not the body")
        slo = Slo.from_dict({**data, "name": name, "project_id": project_id}, "slo")
        key = (project_id, name)
        if key not in self.user and sum(p == project_id for p, _ in self.user) >= MAX_SLOS_PER_PROJECT:
            raise ConfigError(f"name: a project has at most {MAX_SLOS_PER_PROJECT} SLOs")
        action = "update" if key in self.user else "create"
        self.user[key] = slo
        self._changed()
        return slo, action

    def delete(self, name: str, project_id: str) -> Slo | None:
        if self.is_configured(name, project_id):
            raise ReadOnlySloError(f"SLO {name!r} is configured in the slos section")
        slo = self.user.pop((project_id, name), None)
        if slo is not None:
            self._changed()
        return slo

    def _refresh(self) -> None:
        self.slos = (*self.configured.values(), *self.user.values())

    def _changed(self) -> None:
        self._refresh()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps([s.to_dict() for s in self.user.values()], indent=1))
            tmp.replace(self.path)
        for listener in self.listeners:
            listener(self.slos)


def _load(text: str) -> dict[tuple[str, str], Slo]:
    try:
        items = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"SLO file: not JSON: {err}") from None
    if not isinstance(items, list):
        raise ConfigError("SLO file: expected a list of SLOs")
    slos = [Slo.from_dict(item, f"SLO file[{i}]") for i, item in enumerate(items)]
    return {(s.project_id, s.name): s for s in slos}
