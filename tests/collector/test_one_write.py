"""One socket write per answer (``collector.one_write``): what a turn writes leaves together, in order,
and nothing is lost, reordered or held back, whatever the answers' sizes and shapes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.one_write import MAX_PENDING_BYTES, OneWriteHttpProtocol, _TurnBuffer
from collector.serve import InLoopServer, event_loop_factory


class _Socket:
    """Stands in for the socket's transport: records what reaches it, and in which order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        assert not self.closing
        self.events.append(("write", bytes(data)))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.events.append(("close", b""))
        self.closing = True

    def write_eof(self) -> None:
        self.events.append(("eof", b""))

    def abort(self) -> None:
        self.events.append(("abort", b""))
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def _turns(body: Any) -> list[tuple[str, bytes]]:
    """Run ``body(buffer)`` in one turn of a real loop, then let the loop run; what reached the socket."""
    socket = _Socket()

    async def main() -> None:
        body(_TurnBuffer(socket, asyncio.get_running_loop()))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    return socket.events


def test_a_turns_writes_leave_as_one() -> None:
    def turn(buffer: _TurnBuffer) -> None:
        buffer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        buffer.write(bytearray(b"ok"))
        buffer.write(b"")

    assert _turns(turn) == [("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")]


def test_close_end_and_abort_keep_the_order() -> None:
    assert _turns(lambda b: (b.write(b"a"), b.write(b"b"), b.close())) == [("write", b"ab"), ("close", b"")]
    assert _turns(lambda b: (b.write(b"a"), b.write_eof(), b.write(b"c"))) == [
        ("write", b"a"),
        ("eof", b""),
        ("write", b"c"),
    ]
    assert _turns(lambda b: (b.write(b"a"), b.abort())) == [("abort", b"")]  # abort drops, as a socket's


def test_a_mutable_buffer_reused_after_write_does_not_change_what_leaves() -> None:
    def turn(buffer: _TurnBuffer) -> None:
        chunk = bytearray(b"first")
        buffer.write(chunk)
        chunk[:] = b"XXXXX"
        buffer.write(memoryview(b"-second"))

    assert _turns(turn) == [("write", b"first-second")]


@given(sizes=st.lists(st.integers(0, 3 * MAX_PENDING_BYTES), max_size=12))
@settings(max_examples=60, deadline=None)
def test_never_more_than_the_bound_waits_and_every_byte_leaves_in_order(sizes: list[int]) -> None:
    chunks = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    held: list[int] = []

    def turn(buffer: _TurnBuffer) -> None:
        for chunk in chunks:
            buffer.write(chunk)
            held.append(buffer._pending_bytes)

    events = _turns(turn)
    assert b"".join(data for _, data in events) == b"".join(chunks)
    assert all(kind == "write" and data for kind, data in events)
    assert all(n < MAX_PENDING_BYTES for n in held)  # a reader that does not read still pauses the writer


def test_attributes_pass_through() -> None:
    buffer = _TurnBuffer(_Socket(), asyncio.new_event_loop())  # type: ignore[arg-type]
    assert buffer.get_extra_info("peername") == "info:peername"


def _app_answers(kind: str, size: int) -> Any:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if kind == "streamed":  # chunks sent without awaiting anything between them
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for i in range(0, len(body), 10_000):
                await send({"type": "http.response.body", "body": body[i : i + 10_000], "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        status = 204 if kind == "empty" else 200
        headers = [(b"content-length", str(len(body)).encode())] if status == 200 else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body if status == 200 else b""})

    return app, body


@pytest.mark.parametrize("kind", ["whole", "streamed", "empty"])
@pytest.mark.parametrize("size", [0, 1, 300, MAX_PENDING_BYTES - 1, MAX_PENDING_BYTES + 1, 3_000_000])
def test_answers_through_a_real_server_arrive_whole(kind: str, size: int) -> None:
    app, body = _app_answers(kind, size)

    async def main() -> None:
        server = InLoopServer(app)
        port = await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(3):  # keep-alive: each answer complete before the next
                    answer = await client.get("/")
                    assert answer.status_code == (204 if kind == "empty" else 200)
                    assert answer.content == (b"" if kind == "empty" else body)
                    head = await client.head("/")
                    assert head.content == b""
            # pipelined requests on one connection: answers in order, none merged or cut
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET / HTTP/1.1\r\nhost: x\r\n\r\n" * 2
                + b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            )
            data = await reader.read()
            writer.close()
            assert data.count(b"HTTP/1.1 20") == 3
        finally:
            await server.stop()

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main())


def test_the_servers_speak_through_it() -> None:
    async def main() -> type:
        server = InLoopServer(_app_answers("whole", 10)[0])
        await server.start()
        try:
            assert server._server is not None
            return server._server.config.http  # type: ignore[no-any-return]
        finally:
            await server.stop()

    assert asyncio.run(main()) is OneWriteHttpProtocol
