"""A service level objective for an LLM service: latency targets, bad error classes, an objective.

One SLO judges every request of one service (optionally of one route or model) against each of
its targets; a request that misses any target, or ends in an error class the SLO counts as bad,
is bad. Attainment is good / (good + bad) over a window, goodput the rate of good requests.

```yaml
slos:
  - name: chat-latency
    service_id: 6d26f238-52b0-4184-8b50-d621a0c80eb4
    route: /v1/chat/completions      # optional: requests whose path starts with it
    ttft_ms: 500                     # time to first token as the client saw it
    tpot_ms: 50                      # the request's mean gap between later tokens
    cost_ms: 30000                   # the whole request
    bad_errors: [5xx, upstream_timeout]
    objective: 0.99
    period: 28d
```

Error classes: ``5xx`` / ``4xx`` (a status class), a status code (``429``), or one of the
proxy's outcomes (``upstream_timeout``, ``upstream_reset``, ``upstream_refused``,
``client_disconnect``). A request with status >= 400 whose class is not listed is left out of
the SLO altogether (neither good nor bad): a rejected request has no latency to judge.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from model.durations import parse_duration_ms
from model.errors import ConfigError

TARGETS = ("ttft", "tpot", "cost")  # latency targets, in the order their misses are named
ERROR_TARGET = "error"  # the miss named when the request ended in a bad error class
OUTCOME_CLASSES = ("upstream_timeout", "upstream_reset", "upstream_refused", "client_disconnect")
DEFAULT_BAD_ERRORS = ("5xx", "upstream_timeout", "upstream_reset", "upstream_refused")
DEFAULT_PERIOD_S = 28 * 86400
MIN_PERIOD_S = 3600
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
MAX_ID_CHARS = 256
KEYS = frozenset(
    {"name", "service_id", "project_id", "route", "model", "ttft_ms", "tpot_ms", "cost_ms",
     "bad_errors", "objective", "period"}
)  # fmt: skip


def _error_class(text: str) -> bool:
    return text in ("4xx", "5xx") or text in OUTCOME_CLASSES or bool(re.fullmatch(r"[1-5]\d\d", text))


@dataclass(frozen=True, slots=True)
class Slo:
    """One SLO; targets in ms (None: no such target), ``objective`` the good share in (0, 1)."""

    name: str
    service_id: str
    project_id: str = ""
    route: str = ""
    model: str = ""
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    cost_ms: float | None = None
    bad_errors: tuple[str, ...] = DEFAULT_BAD_ERRORS
    objective: float = 0.99
    period_s: int = DEFAULT_PERIOD_S

    @property
    def targets(self) -> dict[str, float]:
        """The latency targets set, by name (``ttft``, ``tpot``, ``cost``)."""
        values = {"ttft": self.ttft_ms, "tpot": self.tpot_ms, "cost": self.cost_ms}
        return {name: value for name, value in values.items() if value is not None}

    @property
    def error_budget(self) -> float:
        """The share of requests that may be bad: 1 - objective."""
        return 1.0 - self.objective

    def validate(self, path: str = "slo") -> None:
        if not NAME.match(self.name):
            raise ConfigError(f"{path}.name: 1-100 letters, digits, '_', '.', ':' or '-', got {self.name!r}")
        for key in ("service_id", "project_id", "route", "model"):
            value = getattr(self, key)
            if not isinstance(value, str) or len(value) > MAX_ID_CHARS or not value.isprintable():
                raise ConfigError(f"{path}.{key}: a printable string of at most {MAX_ID_CHARS} characters")
        if not self.service_id:
            raise ConfigError(f"{path}.service_id: required")
        if self.route and not self.route.startswith("/"):
            raise ConfigError(f"{path}.route: a path starting with '/', got {self.route!r}")
        for name, value in self.targets.items():
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{path}.{name}_ms: must be a number > 0, got {value!r}")
        if not self.targets and not self.bad_errors:
            raise ConfigError(f"{path}: needs a target (ttft_ms, tpot_ms, cost_ms) or bad_errors")
        for error in self.bad_errors:
            if not _error_class(error):
                raise ConfigError(
                    f"{path}.bad_errors: {error!r} is not 4xx, 5xx, a status code or one of {OUTCOME_CLASSES}"
                )
        if not 0.0 < self.objective < 1.0:
            raise ConfigError(f"{path}.objective: must be in (0, 1), e.g. 0.99, got {self.objective!r}")
        if self.period_s < MIN_PERIOD_S:
            raise ConfigError(f"{path}.period: at least 1h, got {self.period_s}s")

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form ``from_dict`` reads back."""
        out: dict[str, Any] = {"name": self.name, "service_id": self.service_id}
        for key in ("project_id", "route", "model"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out.update({f"{name}_ms": value for name, value in self.targets.items()})
        out["bad_errors"] = list(self.bad_errors)
        out["objective"] = self.objective
        out["period"] = f"{self.period_s}s"
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str = "slo") -> Slo:
        """Build and validate; ConfigError names the key (``slos[0].ttft_ms``)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(data).__name__}")
        unknown = set(data) - KEYS
        if unknown:
            raise ConfigError(
                f"{path}.{sorted(map(str, unknown))[0]}: unknown key (known: {', '.join(sorted(KEYS))})"
            )
        values: dict[str, Any] = {}
        for key in ("name", "service_id", "project_id", "route", "model"):
            value = data.get(key, "")
            if isinstance(value, int) and not isinstance(value, bool) and key == "service_id":
                value = str(value)  # YAML reads numeric ids as numbers
            if not isinstance(value, str):
                raise ConfigError(f"{path}.{key}: expected a string, got {value!r}")
            values[key] = value
        for name in TARGETS:
            value = data.get(f"{name}_ms")
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ConfigError(f"{path}.{name}_ms: expected a number of milliseconds, got {value!r}")
            values[f"{name}_ms"] = None if value is None else float(value)
        errors = data.get("bad_errors", list(DEFAULT_BAD_ERRORS))
        if not isinstance(errors, list) or len(errors) > 32:
            raise ConfigError(f"{path}.bad_errors: expected a list of at most 32 error classes")
        values["bad_errors"] = tuple(
            str(e) for e in errors if isinstance(e, str | int) and not isinstance(e, bool)
        )
        if len(values["bad_errors"]) != len(errors):
            raise ConfigError(f"{path}.bad_errors: expected strings such as 5xx or 429")
        objective = data.get("objective", 0.99)
        if isinstance(objective, bool) or not isinstance(objective, int | float):
            raise ConfigError(f"{path}.objective: expected a number in (0, 1), got {objective!r}")
        values["objective"] = float(objective)
        try:
            values["period_s"] = parse_duration_ms(data.get("period", f"{DEFAULT_PERIOD_S}s")) // 1000
        except ValueError as err:
            raise ConfigError(f"{path}.period: {err}") from None
        slo = cls(**values)
        slo.validate(path)
        return slo


def slos_from_list(data: Any, path: str = "slos") -> tuple[Slo, ...]:
    """The ``slos`` section: a list of SLOs with distinct names."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list, got {type(data).__name__}")
    slos = tuple(Slo.from_dict(item, f"{path}[{i}]") for i, item in enumerate(data))
    names = [s.name for s in slos]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{path}: the name {name!r} is used twice")
    return slos
