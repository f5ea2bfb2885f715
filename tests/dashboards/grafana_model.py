"""Checks a dashboard JSON against Grafana's typed dashboard model (``grafana-foundation-sdk``).

The SDK's classes are generated from Grafana's own schema (CUE kinds). A dashboard matches the
model when decoding it into those classes keeps every field (nothing unknown is dropped, nothing
changes) and every decoded attribute has the type the class declares.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

plugins.register_default_plugins()


def decode(data: dict[str, Any]) -> Dashboard:
    return Dashboard.from_json(data)


def lost_fields(original: Any, decoded: Any, path: str = "") -> list[str]:
    """Paths present in ``original`` that the round trip dropped or changed (additions are defaults)."""
    if isinstance(original, dict):
        if not isinstance(decoded, dict):
            return [f"{path}: became {type(decoded).__name__}"]
        out = []
        for key, value in original.items():
            if key not in decoded:
                out.append(f"{path}/{key}: unknown to the model")
            else:
                out += lost_fields(value, decoded[key], f"{path}/{key}")
        return out
    if isinstance(original, list):
        if not isinstance(decoded, list) or len(decoded) != len(original):
            return [f"{path}: list changed"]
        return [
            e
            for i, (a, b) in enumerate(zip(original, decoded, strict=True))
            for e in lost_fields(a, b, f"{path}[{i}]")
        ]
    return [] if original == decoded else [f"{path}: {original!r} became {decoded!r}"]


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is typing.Any or hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is list:
        (item,) = typing.get_args(hint) or (typing.Any,)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        args = typing.get_args(hint) or (typing.Any, typing.Any)
        return isinstance(value, dict) and all(_matches(v, args[1]) for v in value.values())
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint) or value in {m.value for m in hint}
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # forward references the SDK leaves as strings, variants: checked by decoding


def type_errors(obj: Any, path: str = "") -> list[str]:
    """Attributes of a decoded SDK object whose value does not have the declared type."""
    if isinstance(obj, list):
        return [e for i, v in enumerate(obj) for e in type_errors(v, f"{path}[{i}]")]
    if not type(obj).__module__.startswith("grafana_foundation_sdk"):
        return []
    if isinstance(obj, enum.Enum):
        return []
    hints = typing.get_type_hints(type(obj), localns=vars(__import__(type(obj).__module__, fromlist=["x"])))
    errors = []
    for name, hint in hints.items():
        value = getattr(obj, name, None)
        if not _matches(value, hint):
            errors.append(f"{path}.{name}: {value!r} is not {hint}")
        errors += type_errors(value, f"{path}.{name}")
    return errors


def model_errors(data: dict[str, Any]) -> list[str]:
    """Everything in ``data`` that Grafana's dashboard model does not describe; empty when it matches."""
    try:
        model = decode(data)
    except (AttributeError, TypeError, KeyError, ValueError) as error:  # the SDK decodes without checks
        return [f"does not decode: {type(error).__name__}: {error}"]
    encoded = json.loads(JSONEncoder(sort_keys=True).encode(model))
    return lost_fields(data, encoded) + type_errors(model)
