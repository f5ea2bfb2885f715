"""The event loop infersight's processes run on, and their garbage collector's settings."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

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


_GC_PROBE = (
    "import gc; from collector.serve import tune_gc; before = gc.get_threshold()[0]; tune_gc(); "
    "print(gc.get_threshold()[0] if gc.get_threshold()[0] != before else 'python', gc.get_freeze_count() > 0)"
)


@pytest.mark.parametrize(("setting", "expected"), [(None, "10000 True"), ("default", "python False")])
def test_tune_gc_freezes_the_start_up_heap_unless_defaults_are_asked_for(
    setting: str | None, expected: str
) -> None:
    # in a child process: freezing this one's heap would change the GC of the rest of the test run
    env = {k: v for k, v in os.environ.items() if k != "INFERSIGHT_GC"}
    if setting is not None:
        env["INFERSIGHT_GC"] = setting
    out = subprocess.run(
        [sys.executable, "-c", _GC_PROBE], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == expected.split()
