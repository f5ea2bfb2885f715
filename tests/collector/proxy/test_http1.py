"""HTTP/1.1 on the wire (http1.py, ws.py) and the proxy's server side with raw clients."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from collector.proxy.http1 import (
    CHUNKED,
    UNTIL_CLOSE,
    ChunkedDecoder,
    ProtocolError,
    body_length,
    parse_request_head,
    parse_response_head,
)
from collector.proxy.ws import FrameCounter
from tests.collector.proxy.conftest import RawUpstream, proxy_to


def _chunked(body: bytes, rng: random.Random) -> bytes:
    out, i = b"", 0
    while i < len(body):
        n = rng.randint(1, 700)
        out += b"%x;ext=1\r\n%b\r\n" % (len(body[i : i + n]), body[i : i + n])
        i += n
    return out + b"0\r\ntrailer-field: x\r\n\r\n"


def test_chunked_decoder_any_split() -> None:
    rng = random.Random(1)
    body = os.urandom(5000)
    wire = _chunked(body, rng) + b"NEXT"
    for trial in range(300):
        decoder, got, rest, i = ChunkedDecoder(), b"", None, 0
        while i < len(wire):
            n = rng.randint(1, 9 if trial % 2 else 3000)
            parts, after = decoder.feed(wire[i : i + n])
            got += b"".join(parts)
            i += n
            if after is not None:
                rest = after + wire[i:]
                break
        assert got == body
        assert rest == b"NEXT"


@pytest.mark.parametrize("size", [b"0x5", b"+5", b"5_0", b" 5", b"", b"g"])
def test_chunked_decoder_refuses_bad_sizes(size: bytes) -> None:
    with pytest.raises(ProtocolError):
        ChunkedDecoder().feed(size + b"\r\nhello\r\n0\r\n\r\n")


def test_chunked_decoder_refuses_data_without_crlf() -> None:
    with pytest.raises(ProtocolError):
        ChunkedDecoder().feed(b"5\r\nhelloXX0\r\n\r\n")


def test_request_head_and_framing() -> None:
    method, target, version, headers = parse_request_head(
        b"POST /v1/x?a=%2F HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nX-Id:  7 "
    )
    assert (method, target, version) == (b"POST", b"/v1/x?a=%2F", b"HTTP/1.1")
    assert headers == [(b"Host", b"h"), (b"Content-Length", b"12"), (b"X-Id", b"7")]
    assert body_length(headers, request=True) == 12
    assert body_length([(b"transfer-encoding", b"Chunked")], request=True) == CHUNKED
    assert body_length([], request=True) == 0
    assert body_length([], request=False) == UNTIL_CLOSE
    assert body_length([(b"content-length", b"3"), (b"content-length", b"3")], request=True) == 3


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost : h", 400),  # space before the colon
        (b"GET / HTTP/1.1\r\nA: 1\r\n folded", 400),  # obs-fold
        (b"GET / HTTP/1.1\r\nA: x\x00y", 400),
        (b"GET /  HTTP/1.1", 400),
        (b"GET / HTTP/2.0", 505),
        (b"GET / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked", 400),
        (b"GET / HTTP/1.1\r\ntransfer-encoding: gzip, chunked", 501),
        (b"GET / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2", 400),
        (b"GET / HTTP/1.1\r\ncontent-length: -1", 400),
        (b"GET / HTTP/1.1\r\ncontent-length: 1, 1", 400),
    ],
)
def test_ambiguous_requests_are_refused(head: bytes, status: int) -> None:
    def parse() -> None:
        _, _, _, headers = parse_request_head(head)
        body_length(headers, request=True)

    with pytest.raises(ProtocolError) as info:
        parse()
    assert info.value.status == status


def test_response_head() -> None:
    assert parse_response_head(b"HTTP/1.1 200 OK\r\nA: b") == (b"HTTP/1.1", 200, b"OK", [(b"A", b"b")])
    assert parse_response_head(b"HTTP/1.0 204")[1:3] == (204, b"")
    with pytest.raises(ProtocolError):
        parse_response_head(b"HTTP/1.1 20 OK")


def _frame(payload: bytes, *, fin: bool = True, opcode: int = 1, mask: bool = True) -> bytes:
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes([(0x80 if fin else 0) | opcode, bit | n])
    elif n < 1 << 16:
        head = bytes([(0x80 if fin else 0) | opcode, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([(0x80 if fin else 0) | opcode, bit | 127]) + n.to_bytes(8, "big")
    return head + (os.urandom(4) if mask else b"") + payload


def test_frame_counter_counts_messages_in_any_split() -> None:
    stream = (
        _frame(b"a" * 5)
        + _frame(b"b" * 300, fin=False, opcode=2)  # a fragmented binary message ...
        + _frame(b"\x81" * 70_000, opcode=0)  # ... ends here (payload bytes look like headers)
        + _frame(b"", opcode=9)  # ping: not a message
        + _frame(b"z", mask=False)
        + _frame(b"\x03\xe8", opcode=8)  # close: not a message
    )
    rng = random.Random(2)
    for trial in range(300):
        counter, total, i = FrameCounter(), 0, 0
        while i < len(stream):
            n = rng.randint(1, 20 if trial % 2 else 5000)
            total += counter.feed(stream[i : i + n])
            i += n
        assert total == 3


async def _exchange(port: int, data: bytes, *, until_close: bool = True, read_for_s: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    got = b""
    try:
        async with asyncio.timeout(read_for_s):
            while chunk := await reader.read(1 << 16):
                got += chunk
    except TimeoutError:
        if until_close:
            raise
    writer.close()
    return got


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    async def go() -> tuple[bytes, list[bytes]]:
        async with RawUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, _):
            requests = (
                b"".join(
                    b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b" % (len(b), b)
                    for b in (b"first", b"second")
                )
                + b"GET /x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            )
            got = await _exchange(_port(proxy.url), requests)
            return got, [target for target, _ in up.requests]

    got, targets = asyncio.run(go())
    assert got.count(b"HTTP/1.1 200") == 3
    assert got.index(b"first") < got.index(b"second") < got.index(b"\r\n\r\nok")
    assert targets == [b"/echo", b"/echo", b"/x"]


def test_http10_client_gets_the_stream_unchunked_then_close() -> None:
    async def go() -> bytes:
        async with (
            RawUpstream(drip_s=0.01, drip_tokens=3) as up,
            proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, _),
        ):
            return await _exchange(_port(proxy.url), b"GET /drip HTTP/1.0\r\n\r\n")

    got = asyncio.run(go())
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body.startswith(b"data: ")
    assert body.endswith(b"data: [DONE]\n\n")


def test_malformed_request_is_400_and_never_forwarded() -> None:
    async def go() -> tuple[bytes, int]:
        async with RawUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen):
            got = await _exchange(
                _port(proxy.url),
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n"
                b"0\r\n\r\n",
            )
            return got, len(up.requests) + len(seen)

    got, forwarded = asyncio.run(go())
    assert got.startswith(b"HTTP/1.1 400 ")
    assert forwarded == 0


def test_expect_continue_and_keep_alive_after_413() -> None:
    async def go() -> bytes:
        async with (
            RawUpstream() as up,
            proxy_to(f"http://127.0.0.1:{up.port}", max_body_bytes=100) as (proxy, _),
        ):
            too_big = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\n\r\n" + b"x" * 500
            fits = b"POST /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n"
            reader, writer = await asyncio.open_connection("127.0.0.1", _port(proxy.url))
            writer.write(too_big + fits)
            got = b""
            while b"100 Continue" not in got:
                got += await reader.read(1 << 16)
            writer.write(b"hi")
            while not got.endswith(b"hi"):
                got += await reader.read(1 << 16)
            writer.close()
            return got

    got = asyncio.run(go())
    assert got.startswith(b"HTTP/1.1 413 ")
    assert b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK" in got  # the same connection went on


def test_head_request_has_no_body() -> None:
    async def go() -> bytes:
        async with RawUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, _):
            return await _exchange(
                _port(proxy.url), b"HEAD /x HTTP/1.1\r\nhost: x\r\n\r\n", until_close=False, read_for_s=0.5
            )

    got = asyncio.run(go())
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert got.endswith(b"\r\n\r\n")  # the head only


def test_refused_upgrade_gets_the_upstreams_answer() -> None:
    async def go() -> bytes:
        async with RawUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, _):
            return await _exchange(
                _port(proxy.url),
                b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
                b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                until_close=False,
                read_for_s=0.5,
            )

    got = asyncio.run(go())
    assert got.startswith(b"HTTP/1.1 200 OK")  # what this upstream says to anything: no tunnel
    assert got.endswith(b"ok")
