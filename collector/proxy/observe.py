"""Hand per-request values to a sketch keeper (``WindowedSketches.observe``) without importing it.

The quantile sketches (collector/window.py) keep TPxx per series and 10 s window; the proxy
only needs something with ``observe(metric, labels, values, ts_s)``, so the dependency is a
protocol and the wiring is done by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from collector import catalog
from collector.proxy.timing import RequestObservation


class ValueObserver(Protocol):
    """Anything that takes one value or an array of values of one metric and label set at a time (s)."""

    def observe(
        self, metric: str, labels: dict[str, str], values: npt.NDArray[np.float64] | float, ts_s: float
    ) -> None: ...


def feed_observer(observer: ValueObserver, identity: dict[str, str]) -> Callable[[RequestObservation], None]:
    """A per-request callback that observes each guide histogram's values (ms / tokens); a failed
    request's values carry ``error_type`` (``RequestObservation.error_type``) beside the identity.

    >>> on_request = feed_observer(sketches, {"service_id": "svc"})   # IngressProxy(on_request=...)
    """
    ok_labels = dict(identity)

    def on_request(obs: RequestObservation) -> None:
        error = obs.error_type
        labels = ok_labels if error is None else {**ok_labels, catalog.ERROR_TYPE: error}
        observer.observe(catalog.REQUEST_COST, labels, obs.cost_ms, obs.ts_s)
        if obs.ttft_ms is not None:
            observer.observe(catalog.FIRST_TOKEN_COST, labels, obs.ttft_ms, obs.ts_s)
        if obs.per_token_ms:
            gaps = np.asarray(obs.per_token_ms, dtype=np.float64)
            observer.observe(catalog.PER_TOKEN_COST, labels, gaps, obs.ts_s)
        if obs.input_tokens is not None:
            observer.observe(catalog.INPUT_TOKEN_QUANTITY, labels, float(obs.input_tokens), obs.ts_s)
        if obs.output_tokens is not None:
            observer.observe(catalog.OUTPUT_TOKEN_QUANTITY, labels, float(obs.output_tokens), obs.ts_s)

    return on_request
