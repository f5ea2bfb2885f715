"""Rule evaluations failing because the store is down, logged as one outage rather than per rule.

Why: while the store cannot answer, every rule fails every interval; a line per rule per interval
(hundreds a minute) buries the one line that matters. The outage is logged once when it starts,
then a summary at most every ``summary_every_s`` while it lasts, and once when the store answers.
A failure that is the rule's own (a bad expression, a template) is not an outage and is logged as it
happens.

>>> outage = OutageLog()
>>> if is_store_outage(error): outage.failed(error)   # per failed evaluation or write
>>> outage.round_done(store_answered=True)            # after a round: logs the recovery once
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

from store.insert_errors import is_transient

__all__ = ["OutageLog", "is_store_outage"]

SUMMARY_EVERY_S = 60.0


def is_store_outage(error: BaseException) -> bool:
    """True when ``error`` or one it was raised from says the store cannot answer now (unreachable,
    busy, out of memory or disk: ``store.insert_errors.is_transient``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if is_transient(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class OutageLog:
    """Counts failed evaluations during an outage and logs its start, summaries and end."""

    def __init__(
        self, summary_every_s: float = SUMMARY_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.summary_every_s = summary_every_s
        self._clock = clock
        self.started_at: float | None = None  # None: no outage now
        self._summarised_at = 0.0
        self._failed_since_summary = 0
        self.failed_total = 0  # evaluations and writes failed during outages, over the process' life
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.started_at is not None

    def failed(self, error: BaseException) -> None:
        """One evaluation (or the ALERTS write) failed because the store is down."""
        now = self._clock()
        self.failed_total += 1
        if self.started_at is None:
            self.started_at = self._summarised_at = now
            self._failed_since_summary = 0
            self.outages += 1
            logger.error(
                "alerting: the store cannot answer ({}: {}); rule evaluations fail until it does"
                " (logged again at most every {:.0f} s)",
                type(error).__name__,
                error,
                self.summary_every_s,
            )
            return
        self._failed_since_summary += 1
        if now - self._summarised_at >= self.summary_every_s:
            logger.error(
                "alerting: the store still cannot answer after {:.0f} s; {} rule evaluations or ALERTS"
                " writes failed in the last {:.0f} s (last: {})",
                now - self.started_at,
                self._failed_since_summary,
                now - self._summarised_at,
                error,
            )
            self._summarised_at = now
            self._failed_since_summary = 0

    def round_done(self, store_answered: bool) -> None:
        """After a round: ``store_answered`` (no outage failure in it) ends an outage, logged once."""
        if not store_answered or self.started_at is None:
            return
        logger.info("alerting: the store answers again after {:.0f} s", self._clock() - self.started_at)
        self.started_at = None
