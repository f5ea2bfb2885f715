"""OpenTelemetry SDK clients for the OTLP receiver tests: the SDK's own OTLP/HTTP protobuf exporters,
and an OTLP/HTTP JSON exporter built on the SDK's encoder.

Why a JSON exporter of our own: ``opentelemetry-exporter-otlp-json-http`` (0.66b1, the newest) pins
``opentelemetry-exporter-http-transport==0.66b1`` while ``opentelemetry-exporter-otlp-proto-http``
1.45.2 pins ``0.66b2``, so the two cannot be installed together. This one encodes with the SDK's
``encode_metrics``/``encode_spans`` (the protobuf exporter's own encoder) and writes the OTLP/JSON
mapping the specification gives: lowerCamelCase field names, enums as integers, trace and span ids
as hex, 64-bit integers as strings.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import httpx
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_IDS = ("traceId", "spanId", "parentSpanId")


def otlp_json(message: Any) -> bytes:
    """A protobuf message in the OTLP/JSON encoding."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    return json.dumps(_hex_ids(document)).encode()


def _hex_ids(node: Any) -> Any:
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex() if key in _IDS and isinstance(value, str) else _hex_ids(value)
            for key, value in node.items()
        }
    return node


class JsonMetricExporter(MetricExporter):
    """POSTs each export as OTLP/JSON; ``last_status`` keeps the receiver's answer."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.last_status = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        response = httpx.post(
            self.endpoint, content=otlp_json(encode_metrics(metrics_data)), headers=self.headers
        )
        self.last_status = response.status_code
        return MetricExportResult.SUCCESS if response.is_success else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


class JsonSpanExporter(SpanExporter):
    """POSTs each export of spans as OTLP/JSON."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.last_status = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        response = httpx.post(self.endpoint, content=otlp_json(encode_spans(spans)), headers=self.headers)
        self.last_status = response.status_code
        return SpanExportResult.SUCCESS if response.is_success else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        return None
