"""The console's browser tests: the demo's data served by ``infersight server`` with auth on, and
Debian's chromium. Every browser test is skipped, saying why, where chromium is not installed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.console.browser import DEFAULT_TIMEOUT_MS, VIEWPORT, PageLog, chromium_path
from tests.infersight.cli_processes import Process, free_port, run_cli

ADMIN_KEY = "console-test-bootstrap-admin-key"
# How long the demo runs: 30 s gives every panel data; a longer run draws fuller charts for docs.
DEMO_S = int(os.environ.get("CONSOLE_DEMO_S", "30"))


@dataclass(frozen=True)
class ConsoleServer:
    url: str
    admin_key: str

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {key or self.admin_key}"}
        )


@pytest.fixture(scope="session")
def chromium() -> Path:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "chromium is not installed: apt-get install chromium (tools/system-deps.sh does, as root)"
        )
    return path


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    """The demo's data (two services of two pods, one pod crashed and restarted, audit traces), then
    ``infersight server`` over it with auth on and alert rules evaluated every 5 s."""
    tmp = tmp_path_factory.mktemp("console")
    data = tmp / "data"
    demo = run_cli(
        ["demo", "--duration", str(DEMO_S), "--interval", "5s", "--data", str(data),
         "--listen", f"127.0.0.1:{free_port()}"],
        tmp,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    port = free_port()
    server = Process(
        [
            "server", "--data", str(data), "--listen", f"127.0.0.1:{port}",
            "--set", "auth.enabled=true", "--set", f"auth.admin_key={ADMIN_KEY}",
            "--set", "alerts.interval=5s",
            # the demo's pods stopped with it: left alone, each would become a PodNotReporting event
            # (and its service ABNORMAL) while a test compares the pages with the APIs
            "--set", "events.silent_after_s=86400",
        ],
        tmp,
        "server",
    )  # fmt: skip
    try:
        server.wait_http(f"http://127.0.0.1:{port}/-/ready")
        yield ConsoleServer(f"http://127.0.0.1:{port}", ADMIN_KEY)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API runs an event loop in this thread while it is open,
    and every later test that calls ``asyncio.run`` would fail until it is closed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser: Browser, key: str | None) -> tuple[Page, PageLog]:
    """A fresh tab at 1280 by 800, logged in with ``key`` (None: not logged in), and its log."""
    context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC", locale="en-GB")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    if key is not None:
        context.add_init_script(f"window.sessionStorage.setItem('infersight.apiKey', {key!r});")
    page = context.new_page()
    return page, PageLog().watch(page)


@pytest.fixture
def logged_in(browser: Browser, console_server: ConsoleServer) -> Iterator[tuple[Page, PageLog]]:
    page, log = open_page(browser, console_server.admin_key)
    yield page, log
    page.context.close()
