"""OTLP/HTTP request bodies in and answers out, for the metrics and traces receivers.

OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp) sends one ``Export…ServiceRequest``
per POST, binary protobuf (``application/x-protobuf``) or the protobuf JSON mapping
(``application/json``), optionally gzip-compressed. Bodies are read and decompressed within the same
bounds as remote write (``remote_write.read_body``, ``request_body.decode_body``), then parsed with
``opentelemetry-proto``'s generated classes (``google.protobuf.json_format`` for JSON). OTLP/JSON
writes trace and span ids as hex where the protobuf JSON mapping writes bytes as base64; they are
turned into base64 before parsing, wherever they are.

Answers follow the specification: 200 with an (empty) ``Export…ServiceResponse`` in the request's
own encoding; 400 with a ``google.rpc.Status`` for a request that must not be retried; 413 past the
body bounds; 503 when the data cannot be kept now (the SDK's exporters retry 429/502/503/504).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from query.api.json_body import parse_json
from query.api.request_body import decode_body

METRICS_PATHS = ("/v1/metrics", "/api/v1/otlp/v1/metrics")
TRACES_PATHS = ("/v1/traces", "/api/v1/otlp/v1/traces")
PATHS = (*METRICS_PATHS, *TRACES_PATHS)  # all writes: the auth middleware guards them as /api
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = frozenset(("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"))
# google.rpc.Code for an answer's Status (INVALID_ARGUMENT, UNAVAILABLE, ...), by HTTP status.
_RPC_CODES = {400: 3, 403: 7, 413: 3, 415: 3, 503: 14}
_Send = Callable[[dict[str, Any]], Awaitable[None]]


class UnsupportedMediaError(ValueError):
    """A Content-Type that OTLP/HTTP does not define (HTTP 415)."""


def media_type(content_type: str | None) -> str:
    """``PROTOBUF`` or ``JSON`` for a request's Content-Type (absent: protobuf)."""
    kind = (content_type or PROTOBUF).partition(";")[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf", "application/octet-stream"):
        return PROTOBUF
    if kind == JSON:
        return JSON
    raise UnsupportedMediaError(
        f"unsupported Content-Type {content_type!r}:"
        " OTLP/HTTP takes application/x-protobuf or application/json"
    )


def decode_request(
    body: bytes, media: str, content_encoding: str | None, max_decoded_bytes: int, message: type[Message]
) -> Message:
    """The ``message`` a body holds; ValueError (``BodyTooLargeError`` past the bound) if none."""
    raw = decode_body(body, content_encoding, max_decoded_bytes, default="identity")
    if media == PROTOBUF:
        try:
            return message.FromString(raw)
        except (DecodeError, RecursionError) as err:
            raise ValueError(f"not an OTLP protobuf {message.DESCRIPTOR.name}: {err}") from None
    document = parse_json(raw, max_bytes=max_decoded_bytes)
    if not isinstance(document, dict):
        raise ValueError(f"an OTLP JSON {message.DESCRIPTOR.name} is an object")
    try:
        return json_format.ParseDict(_ids_as_base64(document), message(), ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, AttributeError) as err:
        raise ValueError(f"not an OTLP JSON {message.DESCRIPTOR.name}: {str(err)[:300]}") from None


def _ids_as_base64(node: Any, depth: int = 0) -> Any:
    """OTLP/JSON's hex trace/span ids as the base64 the protobuf JSON mapping reads."""
    if depth > 64:
        raise ValueError("OTLP JSON nested deeper than 64 levels")
    if isinstance(node, list):
        return [_ids_as_base64(item, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _ID_FIELDS and isinstance(value, str) and value:
            with contextlib.suppress(ValueError):  # not hex: left for the parser to judge as base64
                value = base64.b64encode(bytes.fromhex(value)).decode()
        else:
            value = _ids_as_base64(value, depth + 1)
        out[key] = value
    return out


def encode_answer(message: Message, media: str) -> bytes:
    """A response message in the request's encoding."""
    if media == JSON:
        return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()
    return message.SerializeToString()


async def send_answer(send: _Send, status: int, media: str, payload: bytes | Message) -> None:
    """Answer ``status``: a response message, or an error text sent as a ``google.rpc.Status``."""
    if isinstance(payload, bytes):
        text = payload.decode("utf-8", "replace").strip()
        payload = status_pb2.Status(code=_RPC_CODES.get(status, 2), message=text[:2000])
    body = encode_answer(payload, media)
    head = [(b"content-type", media.encode()), (b"content-length", b"%d" % len(body))]
    if status == 503:
        head.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def hex_id(raw: bytes) -> str:
    """A trace or span id as OTLP/JSON and W3C trace context write it."""
    return binascii.hexlify(raw).decode()
