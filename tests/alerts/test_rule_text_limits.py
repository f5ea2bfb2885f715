"""Rule expressions pass the query API's text limits before the parser sees them."""

from __future__ import annotations

import pytest

from alerts.rules import from_yaml
from model.errors import ConfigError


def _rule_file(expr: str) -> str:
    return f"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: '{expr}'\n"


@pytest.mark.parametrize(
    "expr",
    [
        "(" * 20_000 + "up" + ")" * 20_000,
        "-" * 20_000 + "up",
        "abs(" * 5_000 + "up" + ")" * 5_000,
        " + ".join(["up"] * 5_000),
    ],
    ids=["parens", "unary", "calls", "chain"],
)
def test_hostile_rule_expressions_are_a_config_error(expr: str) -> None:
    with pytest.raises(ConfigError, match=r"groups\[0\]\.rules\[0\]\.expr"):
        from_yaml(_rule_file(expr))


def test_an_ordinary_rule_still_loads() -> None:
    rules = from_yaml(_rule_file("sum by (service_id) (rate(infer_service_request_total[5m])) > 1"))
    assert rules.groups[0].rules[0].alert == "A"
