"""Log lines an operator can read: one INFO line per target at start, an outage warned once and then
summarised at most every minute, its end at INFO with how long and how many scrapes failed.

The clock is driven by the test and the lines come from a sink added to loguru: no sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from collector.outage import OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines() -> Iterator[list[str]]:
    found: list[str] = []
    sink = logger.add(
        lambda m: found.append(str(m).rstrip("\n")), level="DEBUG", format="{level} | {message}"
    )
    yield found
    logger.remove(sink)


def _at(lines: list[str], level: str) -> list[str]:
    return [line for line in lines if line.startswith(f"{level} |")]


def test_an_outage_is_one_warning_a_summary_a_minute_and_one_recovery(lines: list[str]) -> None:
    clock = Clock()
    outage = OutageLog("sending samples", tries="sends", clock=clock)
    for second in range(0, 150):  # a failure every second for 150 s
        clock.now = float(second)
        outage.failed(f"refused #{second}")
    clock.now = 151.0
    outage.succeeded()
    outage.succeeded()  # once recovered, success says nothing more
    warnings = _at(lines, "WARNING")
    assert len(warnings) == 3, warnings  # the start, a summary at 60 s and at 120 s
    assert "sending samples failed: refused #0" in warnings[0]
    assert (
        "60 sends failed in the last 60 s, 61 since it began 60 s ago; last reason: refused #60"
        in warnings[1]
    )
    assert "121 since it began 120 s ago" in warnings[2]
    assert _at(lines, "INFO") == [
        "INFO | sending samples recovered after 151 s; 150 sends failed (last reason: refused #149)"
    ]
    assert len(_at(lines, "DEBUG")) == 149  # every failure after the first is still there at DEBUG


def test_a_second_outage_is_warned_again(lines: list[str]) -> None:
    clock = Clock()
    outage = OutageLog("x", clock=clock)
    outage.failed("a")
    outage.succeeded()
    outage.failed("b")
    assert [w.split(" (")[0] for w in _at(lines, "WARNING")] == [
        "WARNING | x failed: a",
        "WARNING | x failed: b",
    ]


def test_a_huge_reason_is_shortened_to_one_line(lines: list[str]) -> None:
    OutageLog("x").failed("line\n" * 10_000)
    assert len(lines) == 1
    assert len(lines[0]) < 500


def test_sidecar_logs_its_start_and_an_outage_of_its_target(
    lines: list[str], http_stub: Any, canned: Any
) -> None:
    clock = Clock()

    async def go() -> str:
        async with http_stub({"/metrics": canned(b"nope", status=503)}) as server:
            target = TargetConfig(
                host="127.0.0.1", port=server.port, allowed_ports=(server.port,), engine="vllm"
            )
            sidecar = Sidecar(ScrapeConfig(interval_s=15), target, ListConsumer(), monotonic=clock)
            task = asyncio.create_task(sidecar.run())
            await asyncio.sleep(0)  # run() logs its start before it waits for the first tick
            await sidecar.stop()
            await task
            for second in range(0, 90, 15):  # six failed scrapes over 75 s
                clock.now = float(second)
                await sidecar.scrape_once()
            server.routes["/metrics"] = canned(b"ok 1\n")
            clock.now = 90.0
            await sidecar.scrape_once()
            await sidecar.scrape_once()
            return sidecar.url

    url = asyncio.run(go())
    assert _at(lines, "INFO")[0] == f"INFO | scraping {url} every 15 s (engine vllm, service -)"
    warnings = _at(lines, "WARNING")
    assert len(warnings) == 2, warnings  # the first failure, and the summary at 60 s
    assert f"scrape of {url} failed: http_status: server returned HTTP status 503" in warnings[0]
    assert "4 scrapes failed in the last 60 s" in warnings[1]
    assert _at(lines, "INFO")[1].startswith(f"INFO | scrape of {url} recovered after 90 s; 6 scrapes failed")
    assert len(_at(lines, "INFO")) == 2
