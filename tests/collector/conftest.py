"""A real HTTP server on a loopback port 0 with canned responses per path, for scrape tests."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest


@dataclass
class Canned:
    """One canned response: status, body, content type, a delay, how the body is framed."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    delay_s: float = 0.0
    content_length: bool = True
    chunk_bytes: int = 0  # > 0: write the body in chunks of this size (chunked encoding)


class LoopbackServer:
    """A test server on a free 127.0.0.1 port for an ``async with`` block; subclasses answer in
    ``_handle`` and set ``port``, ``tls`` and ``_server`` (attributes or dataclass fields)."""

    port: int
    tls: ssl.SSLContext | None
    _server: asyncio.Server | None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


@dataclass
class CannedServer(LoopbackServer):
    """``async with CannedServer({"/metrics": Canned(...)}) as server: server.port``."""

    routes: dict[str, Canned]
    port: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    _server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode().split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        self.requests.append({"path": path, **headers})
        canned = self.routes.get(path, Canned(b"not found", status=404))
        try:
            if canned.delay_s:
                await asyncio.sleep(canned.delay_s)
            out = [f"HTTP/1.1 {canned.status} X", f"Content-Type: {canned.content_type}", "Connection: close"]
            if canned.chunk_bytes:
                out.append("Transfer-Encoding: chunked")
            elif canned.content_length:
                out.append(f"Content-Length: {len(canned.body)}")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode())
            if canned.chunk_bytes:
                for i in range(0, len(canned.body), canned.chunk_bytes):
                    part = canned.body[i : i + canned.chunk_bytes]
                    writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(canned.body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.fixture(scope="session")
def vllm_capture(testdata_dir: Path) -> str:
    """The captured vLLM exposition (Datadog's fixture, opt-125m)."""
    return (testdata_dir / "captured/engines/vllm/vllm_datadog_fixture_opt-125m.prom").read_text()


@pytest.fixture
def http_stub() -> type[CannedServer]:
    """The CannedServer class (test modules cannot import conftest under importlib mode)."""
    return CannedServer


@pytest.fixture
def canned() -> type[Canned]:
    return Canned
