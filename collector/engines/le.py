"""Rescaling histogram bucket bounds, written back the way Prometheus client libraries write them."""

from __future__ import annotations

import math

from prometheus_client.utils import floatToGoString as _go_float


def scale_le(le: str, factor: float) -> str:
    """``le`` times ``factor`` as a client library would print it: "0.04" * 1000 → "40.0", "+Inf" stays.

    Rounded to 12 significant digits first, so float noise (0.07 * 1000 = 70.00000000000001)
    does not create a bucket bound that no client would expose.
    """
    value = float(le)
    text: str
    if math.isinf(value) or math.isnan(value):
        text = _go_float(value)  # type: ignore[no-untyped-call]
    else:
        text = _go_float(float(f"{value * factor:.12g}"))  # type: ignore[no-untyped-call]
    return text
