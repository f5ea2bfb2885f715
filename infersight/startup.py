"""What a process checks before it opens anything, and how a failed start is told: one line.

A busy port, a folder that cannot be written or a store that cannot be opened are the operator's
to fix, so the CLI prints one line naming the problem and exits 2 (``StartupError``) rather than a
traceback. The listening socket is bound *before* the store is opened: chDB's shutdown after a
failed start is what used to crash the process, and a failure found first needs no shutdown.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from collector.serve import InLoopServer

_HELD_LINES = 10_000  # start-up never logs this much; past it the oldest held lines are dropped


class StartupError(RuntimeError):
    """The process cannot start; the message is the line the CLI prints."""


def one_line(err: BaseException) -> str:
    """An exception as one line: its message with whitespace folded (YAML errors span lines)."""
    text = " ".join(str(err).split())
    if isinstance(err, OSError) and err.strerror and not text:
        text = err.strerror
    return text or type(err).__name__


def redact_dsn(dsn: str) -> str:
    """A store URL fit for a message: the password replaced."""
    url = urlparse(dsn)
    if url.password is None:
        return dsn
    netloc = url.netloc.replace(f":{url.password}@", ":***@", 1)
    return urlunparse(url._replace(netloc=netloc))


def bind_listener(host: str, port: int, setting: str = "server.listen") -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening); StartupError naming the setting."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise StartupError(f"{setting}: cannot listen on {host}:{port}: {one_line(err)}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's own servers
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise StartupError(
            f"{setting}: cannot listen on {host}:{port}: {err.strerror or one_line(err)}"
        ) from None
    sock.set_inheritable(False)
    return sock


def check_writable(folder: Path, setting: str) -> None:
    """Create ``folder`` and write a file in it, or raise StartupError naming the setting."""
    probe = folder / f".infersight-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        named = str(err.filename or "")
        where = f" ({named})" if named and named not in (str(probe), str(folder)) else ""
        raise StartupError(
            f"{setting}: cannot write to {folder}{where}: {err.strerror or one_line(err)}"
        ) from None


class SocketServer(InLoopServer):
    """``InLoopServer`` on a socket bound beforehand (``bind_listener``): the port is known to be
    free before anything else starts, and nothing can take it in between."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(app, host, port)
        self._sock: socket.socket | None = sock

    async def _serve(self, server: Any) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            raise OSError("socket already served")
        await server.serve(sockets=[sock])  # uvicorn closes it at shutdown

    def close_unserved(self) -> None:
        """Close the socket if serving never began (a start that failed before it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class HeldLog:
    """A log sink that holds lines until start-up is over, so a failed start prints one line.

    ``sink = HeldLog(); logger.add(sink.write)``; ``sink.release()`` once started (held lines are
    written, and later ones pass straight through); ``sink.drop()`` when the start failed: what was
    held, and what the clean-up after it logs, is discarded (``log_level: DEBUG`` holds nothing).
    """

    def __init__(self, write: Callable[[str], Any] | None = None) -> None:
        # Resolve sys.stderr at each write, so a replaced stream (tests, daemons) is followed.
        self._write = write or (lambda text: sys.stderr.write(text))
        self._held: list[str] | None = []

    def write(self, message: str) -> None:
        held = self._held
        if held is None:
            self._write(message)
            return
        held.append(str(message))
        if len(held) > _HELD_LINES:
            del held[: len(held) - _HELD_LINES]

    def release(self) -> None:
        held, self._held = self._held, None
        for line in held or ():
            self._write(line)

    def drop(self) -> None:
        self._held = None
        self._write = _discard


def _discard(_: str) -> None:
    return None


class _ToLoguru(logging.Handler):
    """Standard-library log records (the ClickHouse driver's, for one) into loguru's sink, so they
    are held during start-up like every other line."""

    def emit(self, record: logging.LogRecord) -> None:
        from loguru import logger

        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6).log(level, "{}: {}", record.name, " ".join(record.getMessage().split()))


def route_stdlib_logging() -> None:
    """Send the standard library's logging through loguru, one line per record (no tracebacks).

    The ClickHouse driver logs a warning with a traceback on every failed connect; the store's own
    ``StoreUnavailableError`` already says it in one line, so the driver is kept to errors.
    """
    logging.basicConfig(handlers=[_ToLoguru()], level=logging.WARNING, force=True)
    logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)
