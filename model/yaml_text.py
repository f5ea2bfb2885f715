"""YAML read with bounds, for every file and text a user or a client hands us.

``yaml.safe_load`` builds no objects of its own choosing, but two inputs still hurt it: nesting
deep enough to exhaust Python's recursion (a ``RecursionError`` from inside the parser), and
aliases — a 1 kB "billion laughs" document whose anchors refer to anchors loads as a few objects
shared many times over, and the first thing that walks it (validation, an error message that
prints the value) does exponential work. ``load_yaml`` turns the first into a ``ValueError`` and
walks the result once, counting every value as often as aliases repeat it, up to ``max_values``.
"""

from __future__ import annotations

from typing import Any

import yaml

# Far above any configuration or rule file (hundreds of values), far below what is slow to walk.
MAX_VALUES = 1_000_000


def load_yaml(text: str, max_values: int = MAX_VALUES) -> Any:
    """The document's value; ValueError for YAML that is not valid, nested too deeply, or holds
    more than ``max_values`` values once its aliases are expanded."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"not valid YAML: {err}") from None
    except RecursionError:
        raise ValueError("not valid YAML: nested too deeply") from None
    pending, seen = [data], 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > max_values:
            raise ValueError(f"YAML too large: more than {max_values:,} values (aliases counted where used)")
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return data
