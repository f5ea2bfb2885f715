"""The sidecar loop for one target: scrape → parse → adapt → label → hand to the next consumer.

It degrades instead of dying (STYLE 3): every scrape hands on a batch with ``up`` and the other
health series, whatever the target sent and whatever went wrong on our side. A refused, slow,
oversized or unparsable scrape, or any unexpected exception while fetching, parsing or labelling
(reason ``internal``, logged with its traceback), gives ``up 0`` and counts the reason in
``infersight_scrape_errors_total``; the loop goes on. As in Prometheus, one bad line fails the
whole scrape: nothing of a half-read exposition is kept.

Two reasons do not fail the scrape (``up 1``) and are counted once per scrape they happen in:

- ``adapter``: an engine adapter left out a family it could not turn into a guide histogram
  (``le="abc"``, no ``+Inf`` bucket, ...), or failed as a whole; the target's own series are kept;
- ``duplicate_series``: a sample whose series (labels after the identity labels are added) is
  already in the batch is dropped, the first one kept, as Prometheus' appender does; the health
  series' names are ours alone, so a target's own ``up`` or ``infersight_scrape_errors_total{reason=
  "anything"}`` is dropped the same way and cannot overwrite or add to ours.

Its log is written for an operator: one INFO line when a target's loop starts (target, engine,
interval); a failing target gets one warning when the outage begins, then a summary at most every
minute, and one INFO line when it recovers (after how long, how many scrapes failed) — see
``collector/outage.py``. Each failed scrape is still logged at DEBUG.

With a ``metadata`` sink, the ``# TYPE``/``# HELP``/``# UNIT`` of what the target exposes go to it,
a family only when new or changed and everything every ten minutes (``collector/metadata.py``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import httpx
from loguru import logger

from collector.config import ScrapeConfig, TargetConfig
from collector.engines import ENGINE_MAPS, adapt
from collector.engines.ratios import IntervalRatios
from collector.health import HEALTH_NAMES, ScrapeOutcome, health_samples
from collector.metadata import MetadataSink, MetadataTracker
from collector.normalise import to_samples
from collector.outage import OutageLog
from collector.parse import Parsed, ParsedSample, ParseError, parse_scrape
from collector.pipeline import Consumer
from collector.restarts import RestartTracker
from collector.scrape import REASONS, Fetched, ScrapeError, fetch, new_client
from collector.staleness import StalenessTracker
from model.labels import Labels
from model.metadata import records_for
from model.series import Sample

INTERNAL = "internal"
ADAPTER = "adapter"
DUPLICATE_SERIES = "duplicate_series"
FAILURE_REASONS = (*REASONS, INTERNAL)  # the scrape gives up 0
PARTIAL_REASONS = (ADAPTER, DUPLICATE_SERIES)  # up 1, a part of the scrape left out
ERROR_REASONS = (*FAILURE_REASONS, *PARTIAL_REASONS)
MAX_LOGGED_CHARS = 500


def _short(text: object) -> str:
    message = str(text)
    return message if len(message) <= MAX_LOGGED_CHARS else message[: MAX_LOGGED_CHARS - 3] + "..."


class Sidecar:
    """Scrapes one target every ``scrape.interval_s`` and hands each batch to ``consumer``.

    >>> sink = ListConsumer()
    >>> sidecar = Sidecar(ScrapeConfig(interval_s=10), TargetConfig(host="127.0.0.1", port=8000), sink)
    >>> batch = await sidecar.scrape_once()     # or: task = asyncio.create_task(sidecar.run())
    >>> await sidecar.stop()
    """

    def __init__(
        self,
        scrape: ScrapeConfig,
        target: TargetConfig,
        consumer: Consumer,
        clock: Callable[[], float] = time.time,
        metadata: MetadataSink | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        scrape.validate()
        target.validate()
        self.scrape = scrape
        self.target = target
        self.consumer = consumer
        self.clock = clock
        self.url = target.scrape_url(scrape)
        self.identity = target.identity()
        self.errors_total = dict.fromkeys(ERROR_REASONS, 0)
        self._client: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()
        self._running = False
        self._finished = asyncio.Event()
        self._last_partial: tuple[str, ...] = ()
        self._staleness = StalenessTracker()
        self._restarts = RestartTracker()
        self._ratios = IntervalRatios(ENGINE_MAPS[target.engine].ratios)
        self._log = logger.bind(target=self.url, service_id=target.service_id)
        self.outage = OutageLog(f"scrape of {self.url}", tries="scrapes", clock=monotonic, log=self._log)
        self._metadata_sink = metadata
        self._metadata = MetadataTracker(clock=monotonic)
        self._metadata_outage = OutageLog(
            f"handing on the metadata of {self.url}", tries="scrapes", clock=monotonic, log=self._log
        )
        idle = ScrapeOutcome(False, 0.0, 0, 0, self.errors_total)
        self._health_labels = frozenset(s.labels for s in health_samples(idle, self.identity, 0))

    async def _fetch(self) -> Fetched:
        if self._client is None:
            self._client = new_client(verify_tls=self.scrape.verify_tls, timeout_s=self.scrape.timeout_s)
        return await fetch(
            self._client, self.url, timeout_s=self.scrape.timeout_s, max_body_bytes=self.scrape.max_body_bytes
        )

    @staticmethod
    def _parse(fetched: Fetched) -> Parsed:
        try:
            return parse_scrape(fetched.body, fetched.content_type)
        except ParseError as exc:
            raise ScrapeError("parse", str(exc)) from exc

    def _internal(self, stage: str, exc: Exception) -> ScrapeError:
        """An exception nobody expected: logged with its traceback, the scrape still reports."""
        self._log.opt(exception=exc).error("{} of {} raised; counted as a failed scrape", stage, self.url)
        return ScrapeError(INTERNAL, f"{stage}: {type(exc).__name__}: {_short(exc)}")

    def _target_samples(
        self, parsed: list[ParsedSample], start_ms: int
    ) -> tuple[list[Sample], set[Labels], list[str]]:
        """The target's samples and the derived ones, labelled and deduplicated; the series without
        their own timestamps (for staleness); the partial-failure reasons with a log line each."""
        derived = adapt(self.target.engine, parsed)
        notes: list[str] = []
        if derived.dropped:
            notes.append(
                f"{ADAPTER}: "
                + "; ".join(f"{_short(d.family)[:200]}: {d.reason}" for d in derived.dropped[:5])
                + (f"; and {len(derived.dropped) - 5} more" if len(derived.dropped) > 5 else "")
            )
        exposed = parsed + derived.samples + self._ratios.update(parsed)
        seen: set[Labels] = set(self._health_labels)
        kept: list[Sample] = []
        untimed: set[Labels] = set()
        duplicates: list[Sample] = []
        for p, sample in zip(exposed, to_samples(exposed, self.identity, start_ms), strict=True):
            if sample.labels in seen or sample.name in HEALTH_NAMES:
                duplicates.append(sample)
                continue
            seen.add(sample.labels)
            kept.append(sample)
            if p.ts_ms is None:
                untimed.add(sample.labels)
        if duplicates:
            first = _short(duplicates[0].name)[:200]
            notes.append(f"{DUPLICATE_SERIES}: {len(duplicates)} sample(s) dropped, the first {first}")
        return kept, untimed, notes

    def _log_outcome(self, error: ScrapeError | None, notes: list[str]) -> None:
        partial = tuple(note.split(":", 1)[0] for note in notes)
        if partial:
            # a warning when what is left out changes; the same every scrape goes to debug
            log = self._log.warning if partial != self._last_partial else self._log.debug
            log("scrape of {} kept, with parts left out: {}", self.url, _short(" | ".join(notes)))
        self._last_partial = partial
        if error is None:
            self.outage.succeeded()
        else:
            self.outage.failed(f"{error.reason}: {_short(error)}")

    async def _ship_metadata(self, parsed: Parsed, ts_ms: int) -> None:
        """Hand the families' metadata that is due to the sink; a failure is logged, never raised
        (the scrape's samples matter more), and what was not shipped is due again next scrape."""
        if self._metadata_sink is None or not parsed.families:
            return
        due, full = self._metadata.due(parsed.families)
        if not due:
            return
        try:
            await self._metadata_sink(records_for(due, self.identity, ts_ms))
        except Exception as exc:
            self._metadata_outage.failed(f"{type(exc).__name__}: {_short(exc)}")
            return
        self._metadata_outage.succeeded()
        self._metadata.shipped(due, full)

    async def scrape_once(self) -> list[Sample]:
        """Scrape now; return the batch (target series, derived guide series, health) after handing it on.

        Always returns a batch with ``up``: no exception from fetching, parsing, adapting or
        labelling leaves this method (only the consumer's own, and cancellation).
        """
        start_ms = math.floor(self.clock() * 1000)
        t0 = time.perf_counter()
        parsed = Parsed([], [])
        body_bytes = 0
        error: ScrapeError | None = None
        target: list[Sample] = []
        untimed: set[Labels] = set()
        notes: list[str] = []
        try:
            fetched = await self._fetch()
            body_bytes = fetched.size_bytes
            parsed = self._parse(fetched)
        except ScrapeError as exc:
            error = exc
        except Exception as exc:
            error = self._internal("fetching or parsing", exc)
        if error is None:
            try:
                target, untimed, notes = self._target_samples(parsed.samples, start_ms)
            except Exception as exc:
                error = self._internal("adapting or labelling", exc)
                target, untimed, notes = [], set(), []
        if error is not None:
            self.errors_total[error.reason] += 1
        elif self._restarts.observe(parsed.samples):
            self._log.info(
                "{} restarted (restart {} seen by this sidecar)", self.url, self._restarts.restarts
            )
        for note in notes:
            self.errors_total[note.split(":", 1)[0]] += 1
        self._log_outcome(error, notes)
        outcome = ScrapeOutcome(
            up=error is None,
            duration_s=time.perf_counter() - t0,
            samples_scraped=len(parsed.samples) if error is None or error.reason == INTERNAL else 0,
            body_bytes=body_bytes,
            errors_total=dict(self.errors_total),
            restarts_total=self._restarts.restarts,
        )
        health = health_samples(outcome, self.identity, start_ms)
        batch = target + health
        if self.scrape.stale_markers:
            # samples with their own timestamps are never marked stale (Prometheus does the same),
            # nor is a series that is in this batch (it went from no timestamp to its own)
            present = {s.labels for s in target}
            markers = self._staleness.update(untimed | self._health_labels, start_ms)
            batch.extend(m for m in markers if m.labels not in present)
        await self.consumer.consume(batch)
        if error is None:
            await self._ship_metadata(parsed, start_ms)
        return batch

    def _next_tick_s(self, now_s: float) -> float:
        """The next multiple of the interval: every sidecar with the same interval scrapes in step."""
        interval = self.scrape.interval_s
        return (math.floor(now_s / interval) + 1) * interval

    async def run(self) -> None:
        """Scrape at every interval boundary until ``stop()``; errors are logged, never raised."""
        if self._running:
            raise RuntimeError("Sidecar.run() is already running")
        self._running = True
        self._finished.clear()
        self._log.info(
            "scraping {} every {:g} s (engine {}, service {})",
            self.url,
            self.scrape.interval_s,
            self.target.engine,
            self.target.service_id or "-",
        )
        try:
            while not self._stopping.is_set():
                now = self.clock()
                try:
                    await asyncio.wait_for(self._stopping.wait(), max(0.0, self._next_tick_s(now) - now))
                    break
                except TimeoutError:
                    pass
                try:
                    await self.scrape_once()
                except Exception:
                    self._log.exception("scrape loop for {} hit an error; continuing", self.url)
        finally:
            self._running = False
            self._finished.set()

    async def stop(self, *, mark_stale: bool = False) -> None:
        """Stop ``run()`` and release the HTTP client; safe twice and without a start.

        With ``mark_stale``, hand on one last batch of staleness markers for every series of the
        last scrape, as Prometheus does when a target goes away. Off by default: a test that stops
        its sidecars and then queries "now" would otherwise find nothing.
        """
        self._stopping.set()
        if self._running:
            await self._finished.wait()
        if mark_stale:
            markers = self._staleness.mark_all(math.floor(self.clock() * 1000))
            if markers:
                try:
                    await self.consumer.consume(markers)
                except Exception:
                    self._log.exception("handing on staleness markers for {} failed", self.url)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
