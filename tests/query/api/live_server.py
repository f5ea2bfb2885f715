"""An ASGI app served by uvicorn (``collector.serve.InLoopServer``) on a free 127.0.0.1 port, in a
thread with its own event loop, so synchronous tests talk to it over real sockets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from collector.serve import InLoopServer


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Yields the server's base URL (``http://127.0.0.1:<port>``); stops it on the way out."""
    loop = asyncio.new_event_loop()
    server = InLoopServer(app, "127.0.0.1", 0)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as error:  # handed to the test thread below
            failure.append(error)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="live-server", daemon=True)
    thread.start()
    started.wait()
    if failure:
        raise failure[0]
    try:
        yield server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
