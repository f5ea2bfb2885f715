"""Alert instances and their persistence across restarts (a small JSON file, written atomically).

Prometheus restores only the ``for`` progress (from ``ALERTS_FOR_STATE``); keeping the whole
instance (state, fired/resolved times, last notification) also avoids re-sending after a restart.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from loguru import logger

Fingerprint = tuple[tuple[str, str], ...]


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(slots=True)
class Alert:
    """One alert instance of a rule; times are epoch ms, 0 when not yet."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: AlertState
    value: float
    active_at_ms: int
    fired_at_ms: int = 0
    resolved_at_ms: int = 0
    keep_firing_since_ms: int = 0
    last_sent_ms: int = 0
    valid_until_ms: int = 0

    @property
    def fingerprint(self) -> Fingerprint:
        return tuple(sorted(self.labels.items()))


def save_state(path: Path, alerts: dict[str, dict[Fingerprint, Alert]]) -> None:
    """Write every rule's alerts to ``path`` (temp file + rename, so a crash leaves the old file)."""
    data = {key: [dataclasses.asdict(a) for a in by_fp.values()] for key, by_fp in alerts.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, dict[Fingerprint, Alert]]:
    """The alerts saved by ``save_state``; a missing or unreadable file is an empty state (logged)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        result: dict[str, dict[Fingerprint, Alert]] = {}
        for key, alerts in data.items():
            restored = [Alert(**{**a, "state": AlertState(a["state"])}) for a in alerts]
            result[key] = {a.fingerprint: a for a in restored}
        return result
    except (ValueError, TypeError, KeyError) as error:
        logger.warning("alert state {} unreadable, starting empty: {}", path, error)
        return {}
