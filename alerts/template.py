"""Alert label and annotation templates, expanded as Prometheus expands them (a Go text/template subset).

Supported: ``{{ $labels.name }}``, ``{{ .Labels.name }}``, ``{{ $value }}``, ``{{ .Value }}``,
``{{ $externalLabels.name }}``, string literals, pipelines into ``humanize``, ``humanize1024``,
``humanizePercentage``, ``humanizeDuration``, ``toUpper``, ``toLower``, ``title`` and
``printf "<fmt>"``; ``{{-``/``-}}`` trim. A missing label expands to "" (Prometheus sets
``missingkey=zero``). Anything else is a ``TemplateError`` when the rule is loaded, not when it fires.

>>> expand("{{ $labels.service_id }} at {{ $value | humanize }}", {"service_id": "s1"}, 1234.5)
's1 at 1.234k'
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from alerts.gofmt import format_f, format_g, format_v

ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)
PRINTF_VERB = re.compile(r"%(?:\.(\d+))?([fgvsd%])")


class TemplateError(ValueError):
    """A template uses syntax or a function this expander does not have."""


@dataclass(frozen=True, slots=True)
class Context:
    labels: dict[str, str]
    value: float
    external_labels: dict[str, str]


def _scaled(value: float, prefixes: tuple[str, ...], base: float) -> str:
    prefix = ""
    for p in prefixes:
        if abs(value) < base:
            break
        prefix, value = p, value / base
    return f"{format_g(value, 4)}{prefix}"


def humanize(value: float) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return format_g(value, 4)
    if abs(value) >= 1:
        return _scaled(value, ("k", "M", "G", "T", "P", "E", "Z", "Y"), 1000)
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return f"{format_g(value, 4)}{prefix}"


def humanize_1024(value: float) -> str:
    if abs(value) <= 1 or math.isnan(value) or math.isinf(value):
        return format_g(value, 4)
    return _scaled(value, ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"), 1024)


def humanize_duration(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return format_g(value, 4)
    if value == 0:
        return f"{format_g(value, 4)}s"
    if abs(value) >= 1:
        sign, v = ("-", -value) if value < 0 else ("", value)
        whole = int(v)
        days, hours, minutes, seconds = whole // 86400, whole // 3600 % 24, whole // 60 % 60, whole % 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{format_g(v, 4)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = p, value * 1000
    return f"{format_g(value, 4)}{prefix}s"


def _text(value: object) -> str:
    return format_v(value) if isinstance(value, float) else str(value)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise TemplateError(f"not a number: {value!r}") from error


FUNCTIONS: dict[str, Callable[[object], str]] = {
    "humanize": lambda v: humanize(_number(v)),
    "humanize1024": lambda v: humanize_1024(_number(v)),
    "humanizePercentage": lambda v: f"{format_g(_number(v) * 100, 4)}%",
    "humanizeDuration": lambda v: humanize_duration(_number(v)),
    "toUpper": lambda v: _text(v).upper(),
    "toLower": lambda v: _text(v).lower(),
    "title": lambda v: _text(v).title(),
}


def printf(fmt: str, value: object) -> str:
    """Go's ``printf`` with one argument and the verbs %s %v %d %f %.Nf %g %.Ng %%."""

    def verb(match: re.Match[str]) -> str:
        precision, kind = match.group(1), match.group(2)
        if kind == "%":
            return "%"
        if kind in "sv":
            return _text(value)
        number = _number(value)
        if kind == "d":
            return str(int(number))
        if kind == "f":
            return format_f(number, 6 if precision is None else int(precision))
        return format_g(number, int(precision)) if precision else format_v(number)

    return PRINTF_VERB.sub(verb, fmt)


def _operand(token: str, ctx: Context) -> object:
    if token.startswith('"') and token.endswith('"') and len(token) >= 2:
        return token[1:-1]
    if token in ("$value", ".Value"):
        return ctx.value
    for prefix, labels in (
        ("$labels.", ctx.labels),
        (".Labels.", ctx.labels),
        ("$externalLabels.", ctx.external_labels),
        (".ExternalLabels.", ctx.external_labels),
    ):
        if token.startswith(prefix):
            return labels.get(token[len(prefix) :], "")
    raise TemplateError(f"unsupported operand {token!r}")


def _pipeline(action: str, ctx: Context) -> str:
    stages = [s.strip() for s in action.split("|")]
    head = stages[0]
    if head.startswith("printf "):
        match = re.match(r'printf\s+("(?:[^"\\]|\\.)*")\s+(\S+)$', head)
        if not match:
            raise TemplateError(f"unsupported printf: {head!r}")
        value: object = printf(match.group(1)[1:-1], _operand(match.group(2), ctx))
    else:
        value = _operand(head, ctx)
    for stage in stages[1:]:
        if stage not in FUNCTIONS:
            raise TemplateError(f"unsupported function {stage!r}")
        value = FUNCTIONS[stage](value)
    return _text(value)


def expand(
    template: str, labels: dict[str, str], value: float, external_labels: dict[str, str] | None = None
) -> str:
    """Expand ``template`` for one alert; raises TemplateError on syntax this subset lacks."""
    ctx = Context(labels, value, external_labels or {})
    out, pos = [], 0
    for match in ACTION.finditer(template):
        before = template[pos : match.start()]
        out.append(before.rstrip() if match.group(1) else before)
        out.append(_pipeline(match.group(2), ctx))
        pos = match.end()
        if match.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
    out.append(template[pos:])
    return "".join(out)


def check(template: str) -> None:
    """Raise TemplateError if ``template`` cannot be expanded (checked once, when rules load)."""
    expand(template, {}, 0.0)
