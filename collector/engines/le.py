"""Rescaling histogram bucket bounds, written back the way Prometheus client libraries write them."""

from __future__ import annotations

import math

from prometheus_client.utils import floatToGoString as _go_float


def parse_le(le: str) -> float | None:
    """A bucket bound as Prometheus reads one (Go's ParseFloat), or None if it is not a number.

    Stricter than Python's ``float``: no surrounding blanks and no ``_`` digit separators; NaN is
    no bound. ``"+Inf"``, ``"Inf"``, ``"1e3"``, ``"-0.5"`` are.
    """
    if not le or le != le.strip() or "_" in le or len(le) > 400:
        return None
    try:
        value = float(le)
    except (ValueError, OverflowError):
        return None
    return None if math.isnan(value) else value


def scale_le(le: str, factor: float) -> str:
    """``le`` times ``factor`` as a client library would print it: "0.04" * 1000 → "40.0", "+Inf" stays.

    Rounded to 12 significant digits first, so float noise (0.07 * 1000 = 70.00000000000001)
    does not create a bucket bound that no client would expose. Raises ValueError for an ``le``
    that ``parse_le`` refuses; a product beyond float64 is "+Inf".
    """
    value = parse_le(le)
    if value is None:
        raise ValueError(f"bucket bound le={le[:60]!r} is not a number")
    text: str
    if math.isinf(value) or math.isnan(value):
        text = _go_float(value)  # type: ignore[no-untyped-call]
    else:
        text = _go_float(float(f"{value * factor:.12g}"))  # type: ignore[no-untyped-call]
    return text
