"""Go's float formatting, as Prometheus' alert templates print numbers.

``{{ $value }}`` prints through Go's ``%v`` (``strconv`` ``'g'``, shortest digits, exponent from
1e+06 up and below 1e-04); ``humanize`` and friends use ``%.4g`` (4 significant digits, rounded
half to even on the exact binary value, trailing zeros dropped). Python's ``repr`` gives the same
shortest digits as Go, so only the layout differs.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def _layout(negative: bool, digits: str, dp: int, eprec: int) -> str:
    """Go's ``formatDigits`` for 'g': ``digits`` without trailing zeros, value = 0.digits * 10**dp."""
    exp = dp - 1
    sign = "-" if negative else ""
    if exp < -4 or exp >= eprec:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return f"{sign}{digits}{'0' * (dp - len(digits))}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _digits(value: Decimal) -> tuple[str, int]:
    _, digit_tuple, exponent = value.as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    dp = len(digit_tuple) + int(exponent)
    return digits, dp


def format_v(value: float) -> str:
    """Go's ``fmt.Sprint(float64)``: ``0.25``, ``123456``, ``1.234567e+06``, ``1e-05``."""
    special = _special(value)
    if special:
        return special
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    digits, dp = _digits(Decimal(repr(abs(value))))
    return _layout(value < 0, digits, dp, 6)


def format_g(value: float, prec: int) -> str:
    """Go's ``fmt.Sprintf("%.<prec>g", value)``."""
    special = _special(value)
    if special:
        return special
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    exact = Decimal(abs(value))
    rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - prec + 1), rounding=ROUND_HALF_EVEN)
    digits, dp = _digits(rounded)
    eprec = prec
    if eprec > len(digits) and len(digits) >= dp:
        eprec = len(digits)
    return _layout(value < 0, digits, dp, eprec)


def format_f(value: float, decimals: int) -> str:
    """Go's ``%.<n>f`` (round half to even on the exact value)."""
    special = _special(value)
    if special:
        return special
    return f"{Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN):f}"
