"""The SLOs a standalone sidecar judges its requests against: its own configuration's, and those the
server's API holds for its project, read again every ``interval_s``.

Why: an SLO created or changed through ``/api/v1/slos`` lives in the server's registry; ``run`` and
``demo`` pods share that registry in one process, but a sidecar in another pod only sees the server
over HTTP. It asks with its own key (a ``write`` key may read its project's SLO definitions) and
keeps the last answer it got while the server is away, so a restart of the server never changes
what requests are judged against. An SLO the server holds replaces a configured one of the same
project and name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from loguru import logger

from model.errors import ConfigError
from model.slo import Slo

DEFAULT_INTERVAL_S = 30.0
_WARN_EVERY_S = 60.0


class ServerSlos:
    """``await follower.start()``; ``follower.slos`` per request; ``await follower.stop()``."""

    def __init__(
        self,
        configured: Sequence[Slo],
        fetch: Callable[[], Awaitable[list[Any]]],
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self._configured = tuple(configured)
        self._fetch = fetch
        self.interval_s = interval_s
        self.slos: tuple[Slo, ...] = self._configured
        self.fetched = 0  # answers taken
        self._task: asyncio.Task[None] | None = None
        self._warned_at = -_WARN_EVERY_S

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="server-slos")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> None:
        """Ask the server once; on any failure keep what was known (logged at most once a minute)."""
        try:
            answer = await self._fetch()
        except Exception as err:  # the server away or refusing: judged against the last known set
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY_S:
                self._warned_at = now
                logger.warning("SLOs from the server not read ({}); judging against the last known", err)
            return
        self.slos = merge(self._configured, parse(answer))
        self.fetched += 1

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval_s)


def parse(answer: Any) -> list[Slo]:
    """The SLOs of ``/api/v1/slos``'s ``data``; an entry that does not validate is left out, logged."""
    if not isinstance(answer, list):
        raise ValueError(f"expected a list of SLOs, got {type(answer).__name__}")
    out = []
    for i, item in enumerate(answer):
        try:
            out.append(Slo.from_dict(item, f"slos[{i}]"))
        except ConfigError as err:
            logger.warning("SLO from the server left out: {}", err)
    return out


def merge(configured: Sequence[Slo], from_server: Sequence[Slo]) -> tuple[Slo, ...]:
    """Configured SLOs, each replaced by the server's of the same project and name; then the rest."""
    server = {(s.project_id, s.name): s for s in from_server}
    kept = [server.pop((s.project_id, s.name), s) for s in configured]
    return (*kept, *server.values())
