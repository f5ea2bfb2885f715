"""One socket write per HTTP response, not two.

uvicorn writes a response's head when the app starts the response and its body when the app sends
it: two ``send`` system calls for every answer. On loopback (Grafana, a sidecar, a proxy beside the
server) each one also runs the receiving side's TCP path, so each costs about what a small answer
costs to compute: in a profile of the server while dashboards refreshed, the two writes were 40 %
of the event loop's busy time.

``OneWriteHttpProtocol`` is uvicorn's httptools protocol with a transport that gathers what is
written during one turn of the event loop and hands it to the socket at the end of that turn, as one
write. Head and body of an answer are written in the same turn (the app awaits nothing between
them), so they leave together; a streamed body still leaves chunk by chunk, each at the end of the
turn that wrote it. Nothing waits on a timer: the data leaves before the loop next waits for input.
Past ``MAX_PENDING_BYTES`` in one turn what is pending leaves at once, so the socket's own flow
control (a reader that does not read pauses the writer) acts as before: a body streamed without
awaiting is never gathered whole in memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Bytes gathered in one turn at most before they are handed over (an answer larger than this leaves
# in pieces this size, as uvicorn would write it in two anyway).
MAX_PENDING_BYTES = 64 * 1024


class _TurnBuffer:
    """A transport that passes on everything written to it during one turn of the loop as one write.

    Whatever would reach the socket out of order is kept in order: closing, ending the stream or
    asking how much is buffered first hands over what is pending.
    """

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._pending_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        # The caller may reuse a mutable buffer once write returns, as a transport allows.
        chunk = data if isinstance(data, bytes) else bytes(data)
        if self._pending is None:
            self._pending = [chunk]
            self._pending_bytes = len(chunk)
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
        if self._pending_bytes >= MAX_PENDING_BYTES:
            self.flush()  # the end-of-turn call then finds nothing

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what this turn wrote to the socket (nothing if the connection is going)."""
        pending, self._pending, self._pending_bytes = self._pending, None, 0
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        self.flush()
        return self._transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each turn's output (an answer's head and body) at once."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_TurnBuffer(transport, self.loop))  # type: ignore[arg-type]
