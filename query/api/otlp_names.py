"""OpenTelemetry names → Prometheus names, and resource attributes → the guide's identity labels.

Metric names follow OpenTelemetry's Prometheus-compatibility specification (the translation
Prometheus' own OTLP receiver applies by default): the name is split on every character that is not
a letter or digit and joined with ``_``; the unit is spelled out and appended unless the name
already ends with it (``s`` → ``_seconds``, ``ms`` → ``_milliseconds``, ``By`` → ``_bytes``,
``m/s`` → ``_meters_per_second``; ``{token}``-style annotations are dropped); a gauge of unit ``1``
gets ``_ratio``; a monotonic sum gets ``_total``. So ``gen_ai.server.time_to_first_token`` in
``s`` becomes ``gen_ai_server_time_to_first_token_seconds`` (with ``_bucket``/``_sum``/``_count``).

Attribute names become label names with every character outside ``[a-zA-Z0-9_]`` replaced by
``_``; a name starting with a digit is prefixed ``key_``, one starting with a single ``_`` is
prefixed ``key``. Two attributes that land on the same label name have their values joined with
``;`` in the order of their original names, as the specification says.

Resource attributes: ``service.name`` (with ``service.namespace/`` before it) becomes ``job`` and
``service.instance.id`` becomes ``instance``, as in Prometheus; the attributes in
``IDENTITY_ATTRIBUTES`` (configurable: ``otlp.identity`` in the server's configuration) become the
guide's identity labels, so a pod's OTLP metrics and its sidecar's scraped series share
``source``, ``service_id`` and the rest. Other resource attributes are not copied onto every series.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Resource attribute → identity label (docs/opentelemetry.md). The first present attribute of a
# label wins, in this order; ``infersight.<label>`` lets a sender state any identity label itself.
IDENTITY_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("infersight.service_id", "service_id"),
    ("infersight.service_name", "service_name"),
    ("infersight.group_id", "group_id"),
    ("infersight.project_id", "project_id"),
    ("infersight.instance_name", "instance_name"),
    ("infersight.source", "source"),
    ("infersight.role", "role"),
    ("k8s.pod.name", "source"),
    ("service.name", "service_name"),
    ("k8s.deployment.name", "group_id"),
    ("k8s.node.name", "instance_name"),
    ("host.name", "instance_name"),
)


def identity_table(text: str) -> tuple[tuple[str, str], ...]:
    """``k8s.pod.name=source, my.attr=service_id`` (the ``otlp.identity`` setting) before the
    defaults: a configured attribute wins over a default one for the same label. ValueError names a
    pair that is not ``attribute=label`` with a valid label name."""
    pairs = []
    for pair in filter(str.strip, text.split(",")):
        attribute, _, label = (part.strip() for part in pair.partition("="))
        if not attribute or not label or label_name(label) != label or label.startswith("__"):
            raise ValueError(f"{pair.strip()!r}: expected RESOURCE_ATTRIBUTE=LABEL_NAME")
        pairs.append((attribute, label))
    return (*pairs, *IDENTITY_ATTRIBUTES)


_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tebibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
_NOT_ALNUM = re.compile(r"[^a-zA-Z0-9]+")
_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_ANNOTATION = re.compile(r"\{[^}]*\}")


def _unit_tokens(unit: str) -> list[str]:
    """The words a unit adds to a name (``ms`` → [milliseconds], ``By/s`` → [bytes, per, second])."""
    unit = _ANNOTATION.sub("", unit).strip()
    if not unit or unit == "1":
        return []
    main, _, per = unit.partition("/")
    words = [_UNITS.get(main.strip(), main.strip())] if main.strip() else []
    if per.strip():
        words += ["per", _PER_UNITS.get(per.strip(), per.strip())]
    return [token for word in words for token in _NOT_ALNUM.split(word) if token]


@functools.lru_cache(maxsize=4096)  # senders repeat their metrics in every export
def metric_name(name: str, unit: str, kind: str, monotonic: bool = False) -> str:
    """The Prometheus name of an OTLP metric; ``kind``: gauge, sum, histogram,
    exponential_histogram or summary (a histogram's ``_bucket``/``_sum``/``_count`` go after it)."""
    tokens = [t for t in _NOT_ALNUM.split(name) if t]
    counter = kind == "sum" and monotonic
    if counter:
        tokens = [t for t in tokens if t != "total"]
    unit_tokens = _unit_tokens(unit)
    if unit_tokens and tokens[-len(unit_tokens) :] != unit_tokens:
        tokens += unit_tokens
    if kind == "gauge" and _ANNOTATION.sub("", unit).strip() == "1" and tokens[-1:] != ["ratio"]:
        tokens.append("ratio")
    if counter:
        tokens.append("total")
    out = "_".join(tokens) or "_"
    return "_" + out if out[0].isdigit() else out


def label_name(name: str) -> str:
    """The Prometheus label name of an attribute name."""
    out = _NOT_LABEL.sub("_", name) or "_"
    if out[0].isdigit():
        return "key_" + out
    if out.startswith("_") and not out.startswith("__"):
        return "key" + out
    return out


def attribute_value(value: Any) -> str:
    """An OTLP ``AnyValue`` (decoded to Python) as a label value: strings as they are, booleans
    ``true``/``false``, numbers as written, arrays and maps as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return value.hex()
    return json.dumps(value, separators=(",", ":"), default=str)


def labels_of(attributes: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Attributes as labels; colliding names joined with ``;`` in the order of the original names."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for key, value in attributes:
        grouped.setdefault(label_name(key), []).append((key, attribute_value(value)))
    return {name: ";".join(v for _, v in sorted(pairs)) for name, pairs in grouped.items()}


def resource_labels(
    attributes: Mapping[str, Any], identity: Iterable[tuple[str, str]] = IDENTITY_ATTRIBUTES
) -> dict[str, str]:
    """The labels a resource gives every series under it: ``job``, ``instance`` and identity labels."""
    out: dict[str, str] = {}
    service = attributes.get("service.name")
    if service is not None:
        namespace = attributes.get("service.namespace")
        service_text = attribute_value(service)
        out["job"] = f"{attribute_value(namespace)}/{service_text}" if namespace else service_text
    instance = attributes.get("service.instance.id")
    if instance is not None:
        out["instance"] = attribute_value(instance)
    for attribute, label in identity:
        value = attributes.get(attribute)
        if value is not None and label not in out and attribute_value(value):
            out[label] = attribute_value(value)
    return out
