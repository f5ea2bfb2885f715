"""What a self-hosted pod costs, as a counter beside its token counters: cost per 1,000 tokens.

```yaml
cost: {price_per_hour: 2.50, per: accelerator, accelerators: 2, currency: USD}
```

The sidecar counts ``infersight_cost_total{currency}``: the configured hourly price times the
time it has run. Divided by the tokens the same pods served over the same window it is the cost
per token, in PromQL (the dashboards' cost row)::

    1000 * sum(increase(infersight_cost_total[1h]))
      / sum(increase(infer_service_output_token_quantity_sum[1h]))

A pod with ``role`` ``prefill`` or ``decode`` carries that label on its cost too, so a
disaggregated deployment can charge its prefill pods to input tokens and its decode pods to
output tokens (docs/slo.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from model.errors import ConfigError
from model.labels import METRIC_NAME, to_labels
from model.series import Sample

COST_TOTAL = "infersight_cost_total"
PER = ("pod", "accelerator")


@dataclass(frozen=True, slots=True)
class CostConfig:
    """A price per pod-hour, or per accelerator-hour times the pod's ``accelerators``."""

    price_per_hour: float = 0.0
    per: str = "pod"
    accelerators: int = 1
    currency: str = "USD"

    @property
    def hourly(self) -> float:
        return self.price_per_hour * (self.accelerators if self.per == "accelerator" else 1)

    def validate(self, path: str = "cost") -> None:
        if not math.isfinite(self.price_per_hour) or self.price_per_hour < 0:
            raise ConfigError(f"{path}.price_per_hour: must be a number >= 0, got {self.price_per_hour!r}")
        if self.per not in PER:
            raise ConfigError(f"{path}.per: must be one of {PER}, got {self.per!r}")
        if not 1 <= self.accelerators <= 1024:
            raise ConfigError(f"{path}.accelerators: must be in 1-1024, got {self.accelerators!r}")
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ConfigError(f"{path}.currency: a three-letter code such as USD, got {self.currency!r}")

    @classmethod
    def from_dict(cls, data: Any, path: str = "cost") -> CostConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(data).__name__}")
        known = {"price_per_hour", "per", "accelerators", "currency"}
        for key in data:
            if key not in known:
                raise ConfigError(f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})")
        price = data.get("price_per_hour", 0.0)
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise ConfigError(f"{path}.price_per_hour: expected a number, got {price!r}")
        accelerators = data.get("accelerators", 1)
        if isinstance(accelerators, bool) or not isinstance(accelerators, int):
            raise ConfigError(f"{path}.accelerators: expected an integer, got {accelerators!r}")
        for key in ("per", "currency"):
            if not isinstance(data.get(key, ""), str):
                raise ConfigError(f"{path}.{key}: expected a string, got {data[key]!r}")
        config = cls(float(price), data.get("per", "pod"), accelerators, data.get("currency", "USD"))
        config.validate(path)
        return config


class CostMeter:
    """``infersight_cost_total`` since ``started_s``: hourly price times the hours run.

    >>> meter = CostMeter(CostConfig(price_per_hour=3.6), {"service_id": "svc"}, started_s=0)
    >>> meter.to_samples(1000)[0].value
    0.001
    """

    def __init__(self, config: CostConfig, identity: dict[str, str], started_s: float) -> None:
        self.config = config
        self.started_s = started_s
        self.labels = to_labels({**identity, "currency": config.currency, METRIC_NAME: COST_TOTAL})

    def to_samples(self, ts_ms: int) -> list[Sample]:
        hours = max(0.0, ts_ms / 1000 - self.started_s) / 3600
        return [Sample(self.labels, ts_ms, self.config.hourly * hours)]
