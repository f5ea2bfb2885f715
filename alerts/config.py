"""The ``alerts`` section of infersight's YAML: which rules, how often, where notifications go.

```yaml
alerts:
  enabled: true
  interval: 30s                       # evaluation interval (a group's own interval wins)
  rule_files: []                      # extra Prometheus rule files, beside the built-in packs
  packs: [service, health, resources] # built-in packs; [] for rule files only
  defaults: {ttft_tp99_ms: 3000}      # thresholds (alerts/thresholds.py), durations as 5m or s
  services:                           # per-service thresholds
    - {service_id: 6d26f238-..., ttft_tp99_ms: 5000, latency_for: 10m}
  state_file: data/alerts-state.json  # "" keeps no state across restarts
  alertmanager_urls: [http://127.0.0.1:9093]
  webhook_urls: []                    # Alertmanager's webhook payload, without an Alertmanager
  external_url: ""                    # put in generatorURL
  external_labels: {}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.generate import RulesConfig, build_rules
from alerts.rules import RuleFile, from_yaml
from model.durations import parse_duration_ms
from model.errors import ConfigError

KEYS = frozenset(
    {
        "enabled", "interval", "rule_files", "packs", "defaults", "services", "state_file",
        "alertmanager_urls", "webhook_urls", "external_url", "external_labels", "retries",
    }
)  # fmt: skip


def _strings(data: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}.{key}: expected a list of strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class AlertsSection:
    enabled: bool = True
    interval_ms: int = 30_000
    rule_files: tuple[str, ...] = ()
    rules: RulesConfig = field(default_factory=RulesConfig)
    state_file: str = ""
    alertmanager_urls: tuple[str, ...] = ()
    webhook_urls: tuple[str, ...] = ()
    external_url: str = ""
    external_labels: dict[str, str] = field(default_factory=dict)
    retries: int = 3

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, path: str = "alerts") -> AlertsSection:
        """Build and validate; ConfigError names the key (``alerts.services[0].ttft_tp99_ms``)."""
        data = data or {}
        unknown = set(data) - KEYS
        if unknown:
            raise ConfigError(f"{path}.{sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(KEYS))})")
        try:
            interval_ms = parse_duration_ms(data.get("interval", "30s"))
        except ValueError as error:
            raise ConfigError(f"{path}.interval: {error}") from error
        if interval_ms <= 0:
            raise ConfigError(f"{path}.interval: must be > 0")
        section = cls(
            enabled=bool(data.get("enabled", True)),
            interval_ms=interval_ms,
            rule_files=_strings(data, "rule_files", path),
            rules=RulesConfig.from_dict(
                {k: data[k] for k in ("packs", "defaults", "services") if k in data}, path
            ),
            state_file=str(data.get("state_file", "")),
            alertmanager_urls=_strings(data, "alertmanager_urls", path),
            webhook_urls=_strings(data, "webhook_urls", path),
            external_url=str(data.get("external_url", "")),
            external_labels={str(k): str(v) for k, v in (data.get("external_labels") or {}).items()},
            retries=int(data.get("retries", 3)),
        )
        section.load_rules()  # a bad rule file stops start-up, naming the file and the rule
        return section

    def load_rules(self) -> RuleFile:
        """The built-in packs (with this section's thresholds) followed by every rule file's groups."""
        groups = list(build_rules(self.rules).groups)
        for name in self.rule_files:
            try:
                groups += from_yaml(Path(name).read_text()).groups
            except OSError as error:
                raise ConfigError(f"alerts.rule_files: cannot read {name}: {error}") from error
            except ConfigError as error:
                raise ConfigError(f"alerts.rule_files: {name}: {error}") from error
        result = RuleFile(tuple(groups))
        result.validate()
        return result
