"""Exemplars in the proxy: ids read from real requests, one per bucket, bounded, and their wire form."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import catalog
from collector.proxy.exemplars import (
    MAX_WIRE_EXEMPLARS,
    Exemplar,
    ExemplarReservoir,
    exemplars_from_wire,
    exemplars_to_wire,
    request_id_of,
    trace_id_of,
)
from collector.proxy.stats import LATENCY_BUCKETS_MS, ProxyStats
from collector.proxy.timing import RequestObservation
from model.labels import to_labels
from tests.collector.proxy.conftest import RawUpstream, proxy_to

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("value", "trace"),
    [
        (TRACEPARENT, TRACE),
        (f"  {TRACEPARENT}\t", TRACE),
        (f"01-{TRACE}-00f067aa0ba902b7-01-future", TRACE),  # a later version may add fields
        (f"00-{TRACE}-00f067aa0ba902b7-01-more", ""),  # version 00 has exactly four
        (f"ff-{TRACE}-00f067aa0ba902b7-01", ""),
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", ""),
        (f"00-{TRACE}-{'0' * 16}-01", ""),
        (f"00-{TRACE.upper()}-00f067aa0ba902b7-01", ""),
        (f"00-{TRACE[:-1]}-00f067aa0ba902b7-01", ""),
        ("", ""),
        ("garbage", ""),
    ],
)
def test_trace_id_of_a_traceparent(value: str, trace: str) -> None:
    assert trace_id_of(value.encode()) == trace


def test_request_ids_are_short_visible_ascii() -> None:
    assert request_id_of(b"chatcmpl-123") == "chatcmpl-123"
    assert request_id_of(b"a" * 65) == ""
    assert request_id_of(b"has space") == ""
    assert request_id_of(b"\xff\xfe") == ""
    assert request_id_of(None) == ""


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=300))
def test_property_one_exemplar_per_bucket_and_each_in_its_bucket(values: list[float]) -> None:
    reservoir = ExemplarReservoir()
    bounds = tuple(float(b) for b in LATENCY_BUCKETS_MS)
    for i, v in enumerate(values):
        reservoir.offer("m", bounds, v, i, (("request_id", f"r{i}"),))
    drained = reservoir.drain({"service_id": "s"})
    assert len(drained) <= len(bounds) + 1
    assert len({e.series for e in drained}) == len(drained)
    edges = (-math.inf, *bounds, math.inf)
    for e in drained:
        le = float(dict(e.series)["le"])
        below = edges[edges.index(le) - 1]
        assert below < e.value <= le
        # the latest value that landed in that bucket
        assert e.ts_ms == max(i for i, v in enumerate(values) if below < v <= le)
    assert len(reservoir) == 0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.builds(
            Exemplar,
            st.dictionaries(
                st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(min_size=1, max_size=20)
            ).map(lambda d: to_labels({**d, "__name__": "x_bucket"})),
            st.sampled_from([(("request_id", "r1"),), (("request_id", "r"), ("trace_id", TRACE))]),
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(min_value=0, max_value=2**41),
        ),
        max_size=20,
    )
)
def test_property_the_wire_form_round_trips(exemplars: list[Exemplar]) -> None:
    assert exemplars_from_wire(exemplars_to_wire(exemplars)) == exemplars


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"exemplars": "x"},
        {"exemplars": [1]},
        {"exemplars": [{"series": {"le": "1"}, "labels": {}, "value": 1, "ts_ms": 1}]},  # no __name__
        {"exemplars": [{"series": {"__name__": "x", "1bad": "v"}, "labels": {}, "value": 1, "ts_ms": 1}]},
        {"exemplars": [{"series": {"__name__": "x"}, "labels": {"a": 1}, "value": 1, "ts_ms": 1}]},
        {"exemplars": [{"series": {"__name__": "x"}, "labels": {"a": "v" * 200}, "value": 1, "ts_ms": 1}]},
        {"exemplars": [{"series": {"__name__": "x"}, "labels": {}, "value": "1", "ts_ms": 1}]},
        {"exemplars": [{"series": {"__name__": "x"}, "labels": {}, "value": 1, "ts_ms": True}]},
        {"exemplars": [{"series": {"__name__": "x"}, "labels": {}, "value": 1, "ts_ms": 10**20}]},
        {"exemplars": [{}] * (MAX_WIRE_EXEMPLARS + 1)},
    ],
)
def test_a_malformed_wire_body_is_a_value_error(body: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        exemplars_from_wire(body)


def test_stats_keep_the_requests_ids_on_each_histogram() -> None:
    stats = ProxyStats({"service_id": "svc"})
    for i, trace in enumerate(("", TRACE)):
        stats.observe(
            RequestObservation(
                ts_s=100.0 + i, method="POST", path="/v1/chat/completions", status=200, cost_ms=40.0,
                ttft_ms=12.0, per_token_ms=(3.0, 9.0), input_tokens=7, output_tokens=3,
                request_id=f"r{i}", trace_id=trace,
            )
        )  # fmt: skip
    drained = {dict(e.series)["__name__"]: e for e in stats.drain_exemplars()}
    assert set(drained) == {f"{name}_bucket" for name in stats.histograms}
    cost = drained[f"{catalog.REQUEST_COST}_bucket"]
    assert (dict(cost.series)["le"], cost.value, cost.ts_ms) == ("50.0", 40.0, 101_000)
    assert dict(cost.labels) == {"request_id": "r1", "trace_id": TRACE}  # the latest in the bucket
    assert drained[f"{catalog.PER_TOKEN_COST}_bucket"].value == 9.0  # the request's slowest gap
    assert stats.drain_exemplars() == []


def test_ids_come_from_the_request_the_answer_or_the_proxy() -> None:
    """Through the proxy: the client's x-request-id and traceparent, else the body's id, else new."""

    async def go() -> tuple[list[RequestObservation], list[tuple[bytes, dict[bytes, bytes]]]]:
        async with RawUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen):
            async with httpx.AsyncClient() as client:
                headers = {"x-request-id": "client-1", "traceparent": TRACEPARENT}
                await client.post(f"{proxy.url}/echo", content=b'{"id": "x"}', headers=headers)
                await client.post(f"{proxy.url}/echo", content=b'{"id": "chatcmpl-7"}')
                await client.post(f"{proxy.url}/echo", content=b"not json")
            for _ in range(500):
                if len(seen) == 3:
                    break
                await asyncio.sleep(0.01)
            return seen, up.requests

    seen, requests = asyncio.run(go())
    assert [(o.request_id, o.trace_id) for o in seen[:2]] == [("client-1", TRACE), ("chatcmpl-7", "")]
    assert len(seen[2].request_id) == 16
    assert requests[0][1][b"traceparent"] == TRACEPARENT.encode()  # unchanged upstream
