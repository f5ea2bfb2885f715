"""Metric metadata: the ``# TYPE``/``# HELP``/``# UNIT`` of a metric family, and whose target said it.

Prometheus keeps metadata per target and answers ``/api/v1/metadata`` with every distinct
(type, help, unit) per metric name; these are the records that carry it from a sidecar's scrape
to the store. Every field is bounded here, because a target (or a client of the ingest API) may
send anything: a name that is not a metric name, a 10 MB help text, a type nobody knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Prometheus' metric types as /api/v1/metadata names them (textparse.MetricType).
TYPES = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
)
MAX_NAME_CHARS = 512
MAX_HELP_CHARS = 4096
MAX_UNIT_CHARS = 128
MAX_IDENTITY_CHARS = 512
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
IDENTITY_FIELDS = ("project_id", "service_id", "instance_name", "source")


class MetadataError(ValueError):
    """A metadata record that cannot be kept; says which field and why."""


def metadata_type(declared: str) -> str:
    """The type as Prometheus reports it: ``untyped`` (text format) is ``unknown``; anything else
    not in :data:`TYPES` is ``unknown`` too, as Prometheus' parser keeps no type it does not know."""
    kind = declared.lower()
    return kind if kind in TYPES else "unknown"


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class FamilyMetadata:
    """What one exposition declares about one metric family (name as in its TYPE/HELP line)."""

    metric: str
    type: str
    help: str
    unit: str

    @classmethod
    def bounded(cls, metric: str, type_: str, help_: str, unit: str) -> FamilyMetadata:
        """A record from untrusted text: type mapped to a known one, help and unit clipped."""
        return cls(
            metric, metadata_type(type_), _clipped(help_, MAX_HELP_CHARS), _clipped(unit, MAX_UNIT_CHARS)
        )

    def entry(self) -> dict[str, str]:
        """The ``/api/v1/metadata`` form: ``{"type": …, "help": …, "unit": …}``."""
        return {"type": self.type, "help": self.help, "unit": self.unit}


@dataclass(frozen=True, slots=True)
class MetadataRecord:
    """A family's metadata as one target exposed it at ``ts_ms``; the target is its identity labels."""

    family: FamilyMetadata
    project_id: str
    service_id: str
    instance_name: str
    source: str
    ts_ms: int

    def validate(self) -> None:
        """Raise ``MetadataError`` for a record the store must not keep."""
        name = self.family.metric
        if not name or len(name) > MAX_NAME_CHARS or not _METRIC_NAME.match(name):
            raise MetadataError(f"metric: not a metric name: {name[:100]!r}")
        if self.family.type not in TYPES:
            raise MetadataError(
                f"type: expected one of {', '.join(sorted(TYPES))}, got {self.family.type[:50]!r}"
            )
        if len(self.family.help) > MAX_HELP_CHARS:
            raise MetadataError(f"help: longer than {MAX_HELP_CHARS} characters")
        if len(self.family.unit) > MAX_UNIT_CHARS:
            raise MetadataError(f"unit: longer than {MAX_UNIT_CHARS} characters")
        for field in IDENTITY_FIELDS:
            if len(getattr(self, field)) > MAX_IDENTITY_CHARS:
                raise MetadataError(f"{field}: longer than {MAX_IDENTITY_CHARS} characters")
        if not -(2**62) < self.ts_ms < 2**62:
            raise MetadataError("time: out of range")
        texts = {"help": self.family.help, "unit": self.family.unit}
        texts.update((f, getattr(self, f)) for f in IDENTITY_FIELDS)
        for field, value in texts.items():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise MetadataError(f"{field}: not valid Unicode (a lone surrogate)") from None

    def to_wire(self) -> dict[str, Any]:
        return {
            "metric": self.family.metric,
            "type": self.family.type,
            "help": self.family.help,
            "unit": self.family.unit,
            "project_id": self.project_id,
            "service_id": self.service_id,
            "instance_name": self.instance_name,
            "source": self.source,
            "time": self.ts_ms,
        }

    @classmethod
    def from_wire(cls, data: Any) -> MetadataRecord:
        """Inverse of :meth:`to_wire` for untrusted JSON; ``MetadataError`` names what is wrong."""
        if not isinstance(data, dict):
            raise MetadataError("each record must be an object")
        text: dict[str, str] = {}
        for field in ("metric", "type", "help", "unit", *IDENTITY_FIELDS):
            value = data.get(field, "")
            if not isinstance(value, str):
                raise MetadataError(f"{field}: expected a string")
            text[field] = value
        ts = data.get("time", 0)
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise MetadataError("time: expected integer milliseconds")
        record = cls(
            FamilyMetadata(text["metric"], text["type"] or "unknown", text["help"], text["unit"]),
            text["project_id"],
            text["service_id"],
            text["instance_name"],
            text["source"],
            ts,
        )
        record.validate()
        return record


def records_for(families: list[FamilyMetadata], identity: dict[str, str], ts_ms: int) -> list[MetadataRecord]:
    """``families`` as one target's records, the target named by the sidecar's identity labels."""
    return [
        MetadataRecord(
            family,
            identity.get("project_id", ""),
            identity.get("service_id", ""),
            identity.get("instance_name", ""),
            identity.get("source", ""),
            ts_ms,
        )
        for family in families
    ]
