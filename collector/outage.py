"""Log lines for something that keeps failing, as an operator wants to read them.

A target that is down for an hour, or a server that cannot be reached, fails on every try (every
scrape, every retry a second): a warning per try buries everything else in the log. ``OutageLog``
writes one warning when an outage begins, then at most one summary per ``summary_every_s`` (how
many tries failed since the last line, and the last reason), and one INFO line when it ends (after
how long, how many tries failed). Each failure is still at DEBUG, for whoever wants them all.

The clock is injected (a test drives it; no sleeping), and so is the logger (a bound one carries
the target's labels into JSON logs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loguru import logger

MAX_REASON_CHARS = 300


def _short(reason: object) -> str:
    text = " ".join(str(reason).split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


class OutageLog:
    """``failed(reason)`` on every failed try, ``succeeded()`` on every good one.

    >>> outage = OutageLog("scrape of http://10.0.0.1:8000/metrics", tries="scrapes")
    >>> outage.failed("connect: refused")   # WARNING ... failed: connect: refused
    >>> outage.failed("connect: refused")   # DEBUG only, until a minute has passed
    >>> outage.succeeded()                  # INFO ... recovered after 2 s; 2 scrapes failed
    """

    def __init__(
        self,
        subject: str,
        *,
        tries: str = "tries",
        summary_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        log: Any = None,
    ) -> None:
        self.subject = subject
        self.tries = tries
        self.summary_every_s = summary_every_s
        self._clock = clock
        self._log = log if log is not None else logger
        self.failures = 0  # in the current outage
        self._since_summary = 0
        self._began_at = 0.0
        self._summary_at = 0.0
        self.last_reason = ""

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, reason: object) -> None:
        now = self._clock()
        self.last_reason = _short(reason)
        self.failures += 1
        self._since_summary += 1
        if self.failures == 1:
            self._began_at = self._summary_at = now
            self._since_summary = 0
            self._log.warning(
                "{} failed: {} (while it keeps failing, a summary at most every {:.0f} s)",
                self.subject,
                self.last_reason,
                self.summary_every_s,
            )
            return
        self._log.debug("{} failed again: {}", self.subject, self.last_reason)
        if now - self._summary_at >= self.summary_every_s:
            self._log.warning(
                "{} still failing: {} {} failed in the last {:.0f} s, {} since it began {:.0f} s ago; "
                "last reason: {}",
                self.subject,
                self._since_summary,
                self.tries,
                now - self._summary_at,
                self.failures,
                now - self._began_at,
                self.last_reason,
            )
            self._summary_at = now
            self._since_summary = 0

    def succeeded(self) -> None:
        if not self.failures:
            return
        self._log.info(
            "{} recovered after {:.0f} s; {} {} failed (last reason: {})",
            self.subject,
            self._clock() - self._began_at,
            self.failures,
            self.tries,
            self.last_reason,
        )
        self.failures = 0
        self._since_summary = 0
