"""Debian's chromium driven by Playwright for Python (no browser download), and what a page did:
its console messages, uncaught errors, failed requests and HTTP errors."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, Request, Response, ViewportSize

CHROMIUM_NAMES = ("chromium", "chromium-browser")
DEFAULT_TIMEOUT_MS = 90_000  # a loaded 2-core machine: generous, and only ever waited on a condition
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# What the page aborts on purpose: the event stream when the Events page is left.
ABORTED_ON_PURPOSE = ("/api/v1/events/stream",)


def chromium_path() -> Path | None:
    """Debian's chromium (``apt-get install chromium``), or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


@dataclass
class PageLog:
    """Everything on a page that a user would see as broken."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> PageLog:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        return self

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console_errors.append(f"{message.type}: {message.text} ({message.location})")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" in failure and any(path in request.url for path in ABORTED_ON_PURPOSE):
            return
        self.failed_requests.append(f"{request.method} {request.url}: {failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.http_errors.append(f"{response.status} {response.request.method} {response.url}")

    def problems(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *self.failed_requests, *self.http_errors]

    def assert_clean(self) -> None:
        assert self.problems() == [], "\n".join(self.problems())
