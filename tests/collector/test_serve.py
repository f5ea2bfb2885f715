"""The event loop infersight's processes run on."""

from __future__ import annotations

import asyncio

import pytest

from collector.serve import InLoopServer, event_loop_factory


def test_uvloop_unless_asyncio_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv("INFERSIGHT_EVENT_LOOP", raising=False)
    assert event_loop_factory() is uvloop.new_event_loop
    monkeypatch.setenv("INFERSIGHT_EVENT_LOOP", "asyncio")
    assert event_loop_factory() is None


def test_an_asgi_app_serves_on_the_chosen_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv("INFERSIGHT_EVENT_LOOP", raising=False)

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send(
            {"type": "http.response.body", "body": type(asyncio.get_running_loop()).__module__.encode()}
        )  # type: ignore[operator]

    async def main() -> bytes:
        server = InLoopServer(app)
        port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        await server.stop()
        return data

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        assert b"\r\nuvloop\r\n" in runner.run(main())  # one chunk
