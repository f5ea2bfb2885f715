"""Keep-alive races with a real upstream socket, and streams the client closes after their last event.

``KeepAliveUpstream`` answers like llama.cpp's ``llama-server``: HTTP/1.1 with ``Keep-Alive``, a
chunked SSE answer whose ``data: [DONE]`` and end-of-body go out as separate writes; then it closes
the kept-alive connection. How it closes is the race: ``close_on_next`` waits for the next request
on the connection and closes it unanswered (the close crossing the request, deterministically);
``close_after_s`` closes it a while after the answer, whatever comes.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.proxy.server import SMALL_BODY_BYTES
from collector.proxy.timing import RequestObservation
from tests.collector.proxy.conftest import chunk, proxy_to, token

SSE_KEEP_ALIVE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
    b"keep-alive: timeout=5, max=100\r\n\r\n"
)
DONE = b"data: [DONE]\n\n"


class KeepAliveUpstream:
    """A loopback upstream closing kept-alive connections as llama.cpp does (see the module doc).

    ``answered``: requests answered; ``dropped``: requests read and closed unanswered;
    ``partial_head``: instead of closing silently, a dropped request gets a few bytes of a head
    first; ``drop_all_after_first``: every request after the very first one is dropped, fresh
    connection or not."""

    def __init__(
        self,
        *,
        close_on_next: bool = True,
        close_after_s: float | None = None,
        done_gap_s: float = 0.0,
        end_gap_s: float = 0.0,
        partial_head: bool = False,
        drop_all_after_first: bool = False,
    ) -> None:
        self.close_on_next = close_on_next
        self.close_after_s = close_after_s
        self.done_gap_s = done_gap_s
        self.end_gap_s = end_gap_s
        self.partial_head = partial_head
        self.drop_all_after_first = drop_all_after_first
        self.answered = 0
        self.dropped = 0
        self.bodies: list[int] = []  # body size of every request read, answered or dropped
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _read_request(self, reader: asyncio.StreamReader) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        size = 0
        if chunked:
            while True:
                n = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(n + 2)
                size += n
                if n == 0:
                    break
        elif length:
            size = len(await reader.readexactly(length))
        self.bodies.append(size)
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    await self._read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if (served and self.close_on_next) or (self.drop_all_after_first and self.answered):
                    self.dropped += 1
                    if self.partial_head:
                        writer.write(b"HTTP/1.1 200")
                        await writer.drain()
                    return
                served += 1
                self.answered += 1
                writer.write(SSE_KEEP_ALIVE_HEAD + chunk(token("a")) + chunk(token("b")))
                if self.done_gap_s:
                    await writer.drain()
                    await asyncio.sleep(self.done_gap_s)
                writer.write(chunk(DONE))
                await writer.drain()
                if self.end_gap_s:
                    await asyncio.sleep(self.end_gap_s)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                if self.close_after_s is not None:
                    await asyncio.sleep(self.close_after_s)
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()

    async def __aenter__(self) -> KeepAliveUpstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _settle(seen: list[RequestObservation], n: int) -> None:
    for _ in range(1000):
        if len(seen) >= n:
            return
        await asyncio.sleep(0.01)


async def _streams(url: str, n: int, body: bytes = b'{"stream": true}') -> list[tuple[int, bytes]]:
    """``n`` streamed requests one after another on one keep-alive client connection."""
    out = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(n):
            response = await client.post(f"{url}/v1/chat/completions", content=body)
            out.append((response.status_code, response.content))
    return out


def test_back_to_back_streams_survive_the_upstream_closing_kept_alive_connections() -> None:
    async def go() -> tuple[list[tuple[int, bytes]], list[RequestObservation], KeepAliveUpstream, int]:
        async with KeepAliveUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen):
            answers = await _streams(proxy.url, 12)
            await _settle(seen, 12)
            return answers, seen, up, proxy.app.upstream_retries

    answers, seen, up, retries = asyncio.run(go())
    assert [status for status, _ in answers] == [200] * 12
    assert all(body.endswith(DONE) for _, body in answers)
    assert [(o.status, o.outcome) for o in seen] == [(200, "ok")] * 12
    # every request after the first went to a kept-alive connection the upstream then closed:
    # each was dropped once and answered on a fresh connection
    assert up.answered == 12
    assert up.dropped == retries == 11


def test_the_retry_is_counted_in_the_proxys_series() -> None:
    async def go() -> list[float]:
        async with KeepAliveUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen):
            await _streams(proxy.url, 3)
            await _settle(seen, 3)
            return [s.value for s in proxy.samples() if s.name == "infersight_proxy_upstream_retries_total"]

    assert asyncio.run(go()) == [2.0]


def test_a_streamed_upload_is_not_sent_again() -> None:
    body = b"x" * (SMALL_BODY_BYTES + 1)  # over the size held whole: streamed upstream, not kept

    async def go() -> tuple[list[tuple[int, bytes]], list[RequestObservation], KeepAliveUpstream]:
        async with KeepAliveUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen):
            answers = await _streams(proxy.url, 2, body=body)
            await _settle(seen, 2)
            return answers, seen, up

    answers, seen, up = asyncio.run(go())
    assert [status for status, _ in answers] == [200, 502]
    assert [o.outcome for o in seen] == ["ok", "upstream_reset"]
    assert (up.answered, up.dropped) == (1, 1)


def test_no_retry_once_a_byte_of_the_answer_arrived() -> None:
    async def go() -> tuple[list[tuple[int, bytes]], KeepAliveUpstream]:
        async with (
            KeepAliveUpstream(partial_head=True) as up,
            proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen),
        ):
            answers = await _streams(proxy.url, 2)
            await _settle(seen, 2)
            return answers, up

    answers, up = asyncio.run(go())
    assert [status for status, _ in answers] == [200, 502]
    assert (up.answered, up.dropped) == (1, 1)


def test_a_request_is_retried_once_only() -> None:
    async def go() -> tuple[list[tuple[int, bytes]], list[RequestObservation], KeepAliveUpstream]:
        async with (
            KeepAliveUpstream(drop_all_after_first=True) as up,
            proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen),
        ):
            answers = await _streams(proxy.url, 2)
            await _settle(seen, 2)
            return answers, seen, up

    answers, seen, up = asyncio.run(go())
    assert [status for status, _ in answers] == [200, 502]
    assert seen[1].outcome == "upstream_reset"
    # the second request: on the reused connection, then once on a fresh one, never a third time
    assert (up.answered, up.dropped) == (1, 2)


@settings(max_examples=12, deadline=None)
@given(
    close_after_ms=st.integers(min_value=0, max_value=30),
    pause_ms=st.integers(min_value=0, max_value=30),
    n=st.integers(min_value=2, max_value=6),
)
def test_property_no_5xx_whenever_the_upstream_closes_an_idle_connection(
    close_after_ms: int, pause_ms: int, n: int
) -> None:
    """However the upstream's close and the next request interleave, every request is answered."""

    async def go() -> tuple[list[int], list[str]]:
        up = KeepAliveUpstream(close_on_next=False, close_after_s=close_after_ms / 1000)
        async with up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen):
            statuses = []
            async with httpx.AsyncClient(timeout=30) as client:
                for _ in range(n):
                    response = await client.post(f"{proxy.url}/v1/chat/completions", content=b"{}")
                    statuses.append(response.status_code)
                    await asyncio.sleep(pause_ms / 1000)
            await _settle(seen, n)
            return statuses, [o.outcome for o in seen]

    statuses, outcomes = asyncio.run(go())
    assert statuses == [200] * n
    assert outcomes == ["ok"] * n


def _raw_stream(port: int, until: bytes) -> bytes:
    """POST a streamed request and close the socket as soon as ``until`` was read."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        got = b""
        while until not in got:
            data = sock.recv(65536)
            if not data:
                break
            got += data
        return got


@pytest.mark.parametrize(("until", "outcome"), [(DONE, "ok"), (b'"b"', "client_disconnect")])
def test_a_stream_closed_by_the_client_after_its_final_event_is_complete(until: bytes, outcome: str) -> None:
    async def go() -> list[RequestObservation]:
        # [DONE] comes a while after the tokens, the end of the chunked body a while after [DONE]:
        # the client is gone before either
        async with (
            KeepAliveUpstream(done_gap_s=0.0 if outcome == "ok" else 3.0, end_gap_s=3.0) as up,
            proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen),
        ):
            got = await asyncio.to_thread(_raw_stream, proxy.port, until)
            assert until in got
            await _settle(seen, 1)
            return seen

    seen = asyncio.run(go())
    assert [(o.status, o.outcome) for o in seen] == [(200, outcome)]
    assert seen[0].output_tokens == 2


def test_the_openai_client_through_the_proxy_gets_every_stream_and_none_is_a_disconnect() -> None:
    """The real (sync) ``openai`` client, which closes the response on ``[DONE]`` without reading on."""

    def client_run(port: int, n: int) -> list[str]:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        texts = []
        try:
            for _ in range(n):
                stream = client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                texts.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        finally:
            client.close()
        return texts

    async def go() -> tuple[list[str], list[RequestObservation]]:
        async with (
            KeepAliveUpstream(end_gap_s=0.05) as up,
            proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen),
        ):
            texts = await asyncio.to_thread(client_run, proxy.port, 6)
            await _settle(seen, 6)
            return texts, seen

    texts, seen = asyncio.run(go())
    assert texts == ["ab"] * 6
    assert [(o.status, o.outcome) for o in seen] == [(200, "ok")] * 6
    assert all(o.output_tokens == 2 and o.ttft_ms is not None for o in seen)
