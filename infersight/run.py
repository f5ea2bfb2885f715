"""``infersight run``: the one-machine mode — store, API and a sidecar per target in one process."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from loguru import logger

from alerts.runner import AlertRunner
from alerts.slo_registry import SloRegistry
from collector.proxy.exemplars import Exemplar
from collector.window import SketchRow
from exporters.buffer import BufferedExporter
from exporters.ingest_log import IngestLog
from exporters.store import StoreExporter
from infersight.alerting import build_alerting
from infersight.config import Config, audit_paths, state_dir
from infersight.exporting import buffered_exporter, ingest_log
from infersight.leader import AlwaysLeader, Leadership, ZooKeeperLeader
from infersight.pod import PodCollector
from infersight.self_series import self_samples
from infersight.startup import SocketServer, StartupError, bind_listener, check_writable, one_line, redact_dsn
from infersight.store_gate import StoreGate
from model.errors import ConfigError
from model.events import Event
from model.metadata import MetadataRecord
from query.api.app import AuthSettings, build_querier, create_app
from query.api.errors import error_response
from query.api.otlp_names import identity_table
from query.api.server_counts import ApiCounters
from query.events.detector import EventDetector
from query.events.hub import EventHub
from query.promql.engine import Engine
from store.audit import AuditLog
from store.audit_digests import AuditKeyError, DigestFolder, load_or_create_key
from store.backend import StoreUnavailableError
from store.events import EventLog, Retention
from store.exemplars import ExemplarStore
from store.metadata import MetadataStore
from store.open import PendingBackend, Store, open_store
from store.retention import Retention as StoreRetention
from store.rollups import RollupJob
from store.sketches import SketchWriter


class Runtime:
    """Everything ``infersight run`` starts, with one ``start()`` and one ``stop()``.

    ``wait_for_store=False`` (``infersight server``): a ClickHouse server that cannot be reached at
    start is not fatal; the API starts, ingest waits in the ingest log, reads answer 503
    (``unavailable``) and the store is tried again in the background until it answers.
    """

    def __init__(self, config: Config, wait_for_store: bool = True) -> None:
        self.config = config
        self.wait_for_store = wait_for_store
        self._listener: socket.socket | None = None
        self.store: Store | None = None
        self.server: SocketServer | None = None
        self.exporter: BufferedExporter | None = None
        self.ingest_log: IngestLog | None = None
        self.pods: list[PodCollector] = []
        self.events: EventHub | None = None
        self.detector: EventDetector | None = None
        self._background: list[asyncio.Task[None]] = []
        self.alerts: AlertRunner | None = None
        self.audit: AuditLog | None = None
        self.slos: SloRegistry | None = None  # configured and API SLOs, judged by every pod's proxy
        self.rollups: RollupJob | None = None
        self.api_counters: ApiCounters | None = None  # what the API refused (infersight.self_series)
        # Who runs the singletons (alerting, rollups, retention, event detection, audit digests):
        # this process alone by default; with store.zookeeper, the elected leader among the servers.
        self.leader: Leadership = AlwaysLeader()

    @property
    def api_url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def exported_samples(self) -> int:
        return self.exporter.exported_samples if self.exporter else 0

    @property
    def pending_samples(self) -> int:
        return self.exporter.pending_samples if self.exporter else 0

    async def start(self) -> None:
        """Start everything, the listening port first; a failure stops what had started (the store
        closed: chDB left open at exit crashes the process) and raises, ``StartupError`` for what
        the operator has to fix (busy port, unwritable folder, unreachable store, bad key file)."""
        try:
            await self._start()
        except BaseException:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            await self.stop()
            raise

    def _check_folders(self) -> DigestFolder | None:
        """The folders this process writes, and the audit key: checked before the store opens."""
        cfg = self.config
        data = state_dir(cfg)
        embedded = cfg.store.dsn.startswith("chdb://")
        check_writable(data, "store.dsn (data folder)" if embedded else "state folder")
        buffer = Path(cfg.buffer.dir) if cfg.buffer.dir else data / "buffer"
        check_writable(buffer, "buffer.dir")
        if not cfg.audit.digests:
            return None
        digest_dir, key_file = audit_paths(cfg)
        check_writable(digest_dir, "audit.digest_dir")
        try:
            key = load_or_create_key(key_file)
        except AuditKeyError as err:
            raise StartupError(f"audit.key_file: {err}") from None
        return DigestFolder(digest_dir, key)

    def _open_store(self) -> Store:
        cfg = self.config
        try:
            return open_store(
                cfg.store.dsn, cfg.store.database, wait=self.wait_for_store, recent=cfg.store.recent_points
            )
        except StoreUnavailableError as err:
            raise StartupError(
                f"store.dsn: cannot reach {redact_dsn(cfg.store.dsn)}: {one_line(err)}"
            ) from None
        except Exception as err:  # whatever the store's library raises: the operator's to fix
            raise StartupError(
                f"store.dsn: cannot open {redact_dsn(cfg.store.dsn)}: {one_line(err)}"
            ) from None

    async def _start(self) -> None:
        cfg = self.config
        self._listener = bind_listener(cfg.server.host, cfg.server.port)
        digests = self._check_folders()
        self.store = await asyncio.to_thread(self._open_store)
        if cfg.store.zookeeper:
            try:
                self.leader = ZooKeeperLeader(cfg.store.zookeeper, cfg.store.database)
            except ImportError:
                raise StartupError(
                    "store.zookeeper: the leader election needs kazoo: pip install 'infersight[cluster]'"
                ) from None
            try:
                await asyncio.to_thread(self.leader.start)
            except Exception as err:
                where = cfg.store.zookeeper
                raise StartupError(f"store.zookeeper: cannot reach {where}: {one_line(err)}") from None
        ev = cfg.events
        retention = Retention(round(ev.pod_retention_s * 1000), round(ev.service_retention_s * 1000))
        self.events = EventHub(EventLog(self.store.backend, retention), self.store.writer)
        self.detector = EventDetector(self.store.querier, silent_after_ms=round(ev.silent_after_s * 1000))
        self.audit = AuditLog(
            self.store.backend,
            digests,
            digest_every_records=cfg.audit.digest_every_records,
            digest_every_s=cfg.audit.digest_every_s,
            chain_lock=self.leader.chain_lock if cfg.store.zookeeper else None,
        )
        engine = Engine(build_querier(self.store))
        try:
            self.slos = SloRegistry(cfg.slos, state_dir(cfg) / "api-slos.json")
        except ConfigError as err:  # the API's SLO file, edited by hand or cut short
            raise StartupError(f"{state_dir(cfg) / 'api-slos.json'}: {err}") from None
        self.alerts, rules_router = build_alerting(
            cfg, engine, self.store.writer, self.audit, self.events, self.slos
        )
        if cfg.store.zookeeper:
            self.alerts.leading = self.leader.is_leader
        self.ingest_log = ingest_log(cfg, self.store.writer)
        self.ingest_log.start()
        app = create_app(
            self.store,
            engine=engine,
            hub=self.events,
            auth=AuthSettings(cfg.auth.enabled, cfg.auth.admin_key),
            audit=self.audit,
            routers=[rules_router],
            ingest_log=self.ingest_log,
            otlp_identity=identity_table(cfg.otlp.identity),
        )
        _answer_unavailable(app)
        self.api_counters = app.state.counters
        pending = self.store.backend
        if isinstance(pending, PendingBackend):
            app.add_middleware(StoreGate, ready=lambda: pending.reached)
        listener, self._listener = self._listener, None
        self.server = SocketServer(app, listener)
        await self.server.start()
        await self.alerts.start()
        logger.info(
            "Prometheus API on {}/api/v1 (Grafana data source URL: {})", self.server.url, self.server.url
        )
        logger.info("Console on {}/ (services, monitoring, events, audit, alerts)", self.server.url)
        self.exporter = buffered_exporter(cfg, StoreExporter(self.store.writer), "run")
        await self.exporter.start()
        if cfg.targets or cfg.proxy or cfg.resources or cfg.probes:
            await self.add_pod(cfg)
        logger.info("{} target(s) scraped every {} s", len(cfg.targets), cfg.scrape.interval_s)
        self._background.append(asyncio.create_task(self._detect_events(ev.interval_s)))
        self._background.append(asyncio.create_task(self._report_self(cfg.scrape.interval_s)))
        if digests is not None:
            self._background.append(asyncio.create_task(self._digest(min(10.0, cfg.audit.digest_every_s))))
        if isinstance(self.store.backend, PendingBackend):
            self._background.append(asyncio.create_task(self._reach_store(self.store.backend)))
        if cfg.store.rollup_interval_s > 0:
            self.rollups = RollupJob(self.store.backend)
            self._background.append(asyncio.create_task(self._roll_up(cfg.store.rollup_interval_s)))

    async def _reach_store(self, backend: PendingBackend, interval_s: float = 2.0) -> None:
        """Try the store until it answers (calls through it try too; this makes sure someone does)."""
        while not await asyncio.to_thread(backend.ready):
            await asyncio.sleep(interval_s)

    async def _digest(self, interval_s: float) -> None:
        """Sign the audit records that have waited ``audit.digest_every_s``."""
        assert self.audit is not None
        while True:
            await asyncio.sleep(interval_s)
            if not self.leader.is_leader():
                continue
            try:
                await asyncio.to_thread(self.audit.digest_if_due)
            except Exception:  # loop boundary: log and try again next interval
                logger.exception("audit digest failed; retrying in {} s", interval_s)

    async def _roll_up(self, interval_s: float) -> None:
        """Move the rollups on (and fold in late samples) every interval, first right away."""
        assert self.rollups is not None
        while True:
            if not self.leader.is_leader():
                await asyncio.sleep(min(interval_s, 1.0))
                continue
            try:
                await asyncio.to_thread(self.rollups.run)
            except StoreUnavailableError as err:
                logger.warning("rollup job: {}; retrying in {} s", err, interval_s)
            except Exception:  # loop boundary: log and try again next interval
                logger.exception("rollup job failed; retrying in {} s", interval_s)
            await asyncio.sleep(interval_s)

    async def report_self_now(self) -> None:
        """Write the server's own counters (``infersight.self_series``) through the exporter."""
        assert self.store is not None
        assert self.exporter is not None
        samples = self_samples(
            int(time.time() * 1000),
            self.store.writer.guard.dropped,
            self.exporter.counts(),
            self.ingest_log.counts() if self.ingest_log is not None else None,
            self.api_counters.read() if self.api_counters is not None else None,
        )
        await self.exporter.consume(samples)

    async def _report_self(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.report_self_now()
            except StoreUnavailableError as err:
                logger.warning("writing infersight's own series: {}; continuing", err)
            except Exception:  # loop boundary: log and keep reporting
                logger.exception("writing infersight's own series failed; continuing")

    async def add_pod(self, pod_config: Config) -> PodCollector:
        """Start a pod's receivers (scrapes, proxy, resources, probes) feeding this process's store."""
        assert self.store is not None
        assert self.exporter is not None
        hub, sketches = self.events, SketchWriter(self.store.backend)

        async def publish(events: list[Event]) -> None:
            if hub is not None:
                await asyncio.to_thread(hub.publish, events)

        async def write_sketches(rows: list[SketchRow]) -> None:
            await asyncio.to_thread(sketches.write, rows)

        metadata = MetadataStore(self.store.backend)  # the targets' TYPE/HELP/UNIT

        async def write_metadata(records: list[MetadataRecord]) -> None:
            await asyncio.to_thread(metadata.write, records)

        exemplars = ExemplarStore(self.store.backend)  # the proxy's request ids per histogram bucket

        async def write_exemplars(rows: list[Exemplar]) -> None:
            await asyncio.to_thread(exemplars.write, rows)

        slos = self.slos
        pod = PodCollector(
            pod_config,
            self.exporter,
            publish,
            write_sketches,
            write_metadata,
            slos=(lambda: slos.slos) if slos is not None else None,
            exemplars=write_exemplars,
        )
        await pod.start()
        self.pods.append(pod)
        return pod

    async def detect_events_now(self) -> None:
        """One detection tick now (the demo calls it after its final scrape)."""
        assert self.detector is not None
        assert self.events is not None
        now_ms = int(time.time() * 1000)
        events = await asyncio.to_thread(self.detector.tick, now_ms)
        await asyncio.to_thread(self.events.publish, events)

    def enforce_retention(self, now_ms: int) -> list[str]:
        """Drop whole partitions past retention: metrics (``store.retention_days``) and events."""
        assert self.store is not None
        dropped = StoreRetention(self.config.store.retention_days).enforce(
            self.store.backend, now_ms, getattr(self.store.backend, "cluster", None)
        )
        if self.events is not None:
            dropped += self.events.log.enforce_retention(now_ms)
        if dropped:
            logger.info("retention dropped {} partition(s): {}", len(dropped), ", ".join(dropped))
        return dropped

    async def _detect_events(self, interval_s: float) -> None:
        """Detect events every interval; drop expired partitions about every ten minutes."""
        ticks = 0
        while True:
            await asyncio.sleep(interval_s)
            if not self.leader.is_leader():
                continue
            try:
                await self.detect_events_now()
                ticks += 1
                if ticks % max(1, round(600 / interval_s)) == 0:
                    await asyncio.to_thread(self.enforce_retention, int(time.time() * 1000))
            except StoreUnavailableError as err:
                logger.warning("event detection: {}; continuing", err)
            except Exception:  # loop boundary: log and keep detecting
                logger.exception("event detection failed; continuing")

    async def scrape_all(self) -> None:
        """Scrape every target once now (the demo's final scrape)."""
        for pod in self.pods:
            await pod.scrape_all()
            await pod.flush()
        if self.exporter is not None:
            await self.exporter.flush(force=True)

    async def stop(self) -> None:
        """Stop sidecars, flush what is pending, stop the API, close the store. Safe twice."""
        if self.alerts is not None:
            await self.alerts.stop()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        for pod in self.pods:
            await pod.stop()
        self.pods = []
        if self.exporter is not None:
            await self.exporter.stop()
            self.exporter = None
        if self.server is not None:
            self.server.close_unserved()
            await self.server.stop()
            self.server = None
        if self.ingest_log is not None:  # after the API: nothing is appended any more
            await asyncio.to_thread(self.ingest_log.stop)
            self.ingest_log = None
        if self.audit is not None:  # after the API: sign what no digest covers yet
            try:
                await asyncio.to_thread(self.audit.close)
            except Exception as err:  # a store gone at shutdown: the next start's digests cover them
                logger.warning("last audit digest not written: {}", one_line(err))
            self.audit = None
        await asyncio.to_thread(self.leader.stop)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None


def _answer_unavailable(app: FastAPI) -> None:
    """A store that is down (or not reached since start-up) answers 503 in Prometheus' shape."""

    async def unavailable(_: Request, err: Exception) -> JSONResponse:
        return error_response("unavailable", f"store unavailable: {one_line(err)}")

    app.add_exception_handler(StoreUnavailableError, unavailable)
