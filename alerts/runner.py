"""Runs the evaluator inside an infersight process and hands its alerts to the notifiers.

``infersight run`` / ``server`` start one ``AlertRunner`` over the store they already have:

>>> runner = AlertRunner(section, Engine(store.querier).instant, store.writer.write, hub.publish)
>>> await runner.start()   # ... await runner.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from loguru import logger

from alerts.alertmanager import AlertmanagerClient
from alerts.config import AlertsSection
from alerts.delivery import RetryPolicy
from alerts.evaluator import Evaluator, Query, Write
from alerts.events import to_events
from alerts.state import Alert
from alerts.webhook import WebhookClient
from model.events import Event


class Notifier(Protocol):
    sent_alerts: int
    failed_alerts: int

    async def send(self, alerts: list[Alert]) -> bool: ...


class AlertRunner:
    """Evaluator + notifiers with ``start()``/``stop()``; ``stop()`` is safe without ``start()`` and twice."""

    def __init__(
        self,
        section: AlertsSection,
        query: Query,
        write: Write,
        publish_events: Callable[[list[Event]], None] | None = None,
    ) -> None:
        self.section = section
        self.publish_events = publish_events
        self.evaluator = Evaluator(
            section.load_rules(),
            query,
            write,
            interval_ms=section.interval_ms,
            state_path=Path(section.state_file) if section.state_file else None,
            external_labels=section.external_labels,
        )
        policy = RetryPolicy(retries=section.retries)
        self.notifiers: list[Notifier] = []
        if section.alertmanager_urls:
            self.notifiers.append(
                AlertmanagerClient(list(section.alertmanager_urls), policy, section.external_url)
            )
        if section.webhook_urls:
            self.notifiers.append(WebhookClient(list(section.webhook_urls), policy, section.external_url))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Several servers on a cluster: only the leader evaluates and notifies (infersight/leader.py).
        # None: this process always does.
        self.leading: Callable[[], bool] | None = None
        self._follow: asyncio.Task[None] | None = None

    async def notify(self, alerts: list[Alert]) -> None:
        """Send to every notifier, and publish firing/resolved transitions as service events."""
        for notifier in self.notifiers:
            await notifier.send(alerts)
        events = to_events(self.evaluator.take_transitions())
        if events and self.publish_events is not None:
            await asyncio.to_thread(self.publish_events, events)

    @property
    def failed_alerts(self) -> int:
        """Alerts that no receiver took (after retries), over all notifiers."""
        return sum(n.failed_alerts for n in self.notifiers)

    @property
    def evaluating(self) -> bool:
        """Whether rules are being evaluated in this process now."""
        return self._task is not None

    async def start(self) -> None:
        if not self.section.enabled:
            return
        if self.leading is None:
            await self._start_evaluating()
        elif self._follow is None:
            self._follow = asyncio.create_task(self._follow_leadership())

    async def _start_evaluating(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self.evaluator.run(self._stop, self.notify))
            rules = sum(len(g.rules) for g in self.evaluator.rules.groups)
            logger.info("alerting: {} rules every {} s", rules, self.section.interval_ms / 1000)

    async def _stop_evaluating(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow_leadership(self, poll_s: float = 0.2) -> None:
        """Evaluate while this process leads; stop the moment it does not."""
        assert self.leading is not None
        while True:
            if self.leading():
                await self._start_evaluating()
            elif self._task is not None:
                logger.info("alerting: not the leader any more; evaluation stopped")
                await self._stop_evaluating()
            await asyncio.sleep(poll_s)

    async def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
            self._follow = None
        await self._stop_evaluating()
