"""``POST /api/v1/write``: Prometheus remote write 1.0 (snappy block-compressed protobuf ``WriteRequest``).

Prometheus, vmagent and the OpenTelemetry Collector write here. Answers as Prometheus' own receiver:
204 when stored; 400 (the sender drops the request, never retries) for a body that is not snappy or
not a ``WriteRequest``; 503 (the sender retries) while the store is unreachable. Label bytes that are
not UTF-8 do not fail the request: that series is dropped and counted (``invalid_utf8``) by the
writer's guard like every other bad input (``store.limits``). Exemplars, histograms and metadata are
skipped. Spec: https://prometheus.io/docs/concepts/remote_write_spec/
"""

from __future__ import annotations

from typing import Any

import cramjam
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from model.labels import to_labels
from model.series import Sample
from query.api.ingest import confine
from query.api.tenancy import current_project
from store.backend import StoreUnavailableError
from store.writes import SampleWriter

_F = descriptor_pb2.FieldDescriptorProto


def _message_classes() -> dict[str, Any]:
    """prometheus/prompb ``types.proto`` + ``remote.proto``, the parts we read; label fields as bytes.

    Bytes rather than proto3 ``string`` so that a label which is not UTF-8 reaches our checks instead
    of failing the whole request in the protobuf parser.
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="infersight/prompb.proto", package="prometheus", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        proto = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = proto.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    one, many = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message("Label", ("name", 1, _F.TYPE_BYTES, one, ""), ("value", 2, _F.TYPE_BYTES, one, ""))
    message("Sample", ("value", 1, _F.TYPE_DOUBLE, one, ""), ("timestamp", 2, _F.TYPE_INT64, one, ""))
    message(
        "TimeSeries",
        ("labels", 1, _F.TYPE_MESSAGE, many, ".prometheus.Label"),
        ("samples", 2, _F.TYPE_MESSAGE, many, ".prometheus.Sample"),
    )
    message("WriteRequest", ("timeseries", 1, _F.TYPE_MESSAGE, many, ".prometheus.TimeSeries"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = ("Label", "Sample", "TimeSeries", "WriteRequest")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{n}")) for n in names}


MESSAGES = _message_classes()
WriteRequest = MESSAGES["WriteRequest"]


def decode_write_request(body: bytes) -> list[Sample]:
    """Samples of a snappy-compressed ``WriteRequest``; ValueError if it is not one."""
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as err:  # cramjam raises its own DecompressionError
        raise ValueError(f"snappy: {err}") from None
    try:
        request = WriteRequest.FromString(raw)
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    out: list[Sample] = []
    for series in request.timeseries:
        # surrogateescape keeps undecodable bytes visible to the guard, which drops and counts them.
        labels = to_labels(
            {
                label.name.decode("utf-8", "surrogateescape"): label.value.decode("utf-8", "surrogateescape")
                for label in series.labels
            }
        )
        out.extend(Sample(labels, point.timestamp, point.value) for point in series.samples)
    return out


def encode_write_request(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    """A snappy-compressed ``WriteRequest``: (labels, [(ts_ms, value), ...]) per series (tests, bench)."""
    request = WriteRequest()
    for labels, points in series:
        ts = request.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(
                name=name.encode("utf-8", "surrogateescape"), value=value.encode("utf-8", "surrogateescape")
            )
        for t, v in points:
            ts.samples.add(timestamp=t, value=v)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def build_remote_write_router(writer: SampleWriter, max_body_bytes: int = 64 << 20) -> APIRouter:
    """The receiver; include it in the API app (``app.include_router(...)``)."""
    router = APIRouter(prefix="/api/v1")

    @router.post("/write")
    async def remote_write(request: Request) -> Response:
        body = await request.body()
        if len(body) > max_body_bytes:
            return Response(f"request body over {max_body_bytes} bytes\n", status_code=413)
        try:
            batch = await run_in_threadpool(decode_write_request, body)
        except ValueError as err:
            return Response(f"malformed remote write request: {err}\n", status_code=400)
        project = current_project()
        if project is not None:
            try:
                batch = confine(batch, project)
            except PermissionError as err:
                return Response(f"{err}\n", status_code=403)
        try:
            await run_in_threadpool(writer.write, batch)
        except StoreUnavailableError as err:
            return Response(f"store unavailable: {err}\n", status_code=503)
        return Response(status_code=204)

    return router
