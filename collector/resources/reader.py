"""The resource component: every interval, read cgroup or /proc, network and devices → ``ma_container_*``.

Sources are picked once at start (``config.cgroup``/``gpu``/``npu``, "auto" = what exists) and
every missing one is said once in the log; a source that fails later is logged and skipped for
that round, the others still report (STYLE 3: degrade, do not die).
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from loguru import logger

from collector.config import ResourcesConfig
from collector.pipeline import Consumer
from collector.resources import gpu, npu
from collector.resources.cgroup import CgroupV1, CgroupV2, detect
from collector.resources.devices import DeviceReading, combine
from collector.resources.network import parse_net_dev, total_bytes
from collector.resources.proc import ProcHost, parse_meminfo
from collector.resources.usage import Snapshot, cpu_memory_figures, device_figures, network_figures
from model.labels import METRIC_NAME, to_labels
from model.series import Sample


class ResourceReader:
    """Reads this container's resources every ``config.interval_s`` and hands them to ``consumer``.

    >>> reader = ResourceReader(ResourcesConfig(), {"service_id": "svc"}, ListConsumer())
    >>> batch = await reader.read_once()   # CPU and network rates appear from the second read
    """

    def __init__(
        self,
        config: ResourcesConfig,
        identity: dict[str, str],
        consumer: Consumer | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        cpu_count: int | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.identity = dict(identity)
        self.consumer = consumer
        self.clock = clock
        self.monotonic = monotonic
        self.root = Path(config.root)
        self.cpu_count = cpu_count or os.cpu_count() or 1
        self.cpu_source: CgroupV2 | CgroupV1 | ProcHost | None = None
        self.nvml: gpu.NvmlReader | None = None
        self.npu_smi: str | None = None
        self._client: httpx.AsyncClient | None = None
        self._prev: Snapshot | None = None
        self._started = False
        self._task: asyncio.Task[None] | None = None

    def _pick_sources(self) -> None:
        self._started = True
        cfg = self.config
        if cfg.cgroup_dir:
            self.cpu_source = CgroupV2(Path(cfg.cgroup_dir))
        elif cfg.cgroup != "none":
            self.cpu_source = detect(self.root, cfg.cgroup, cfg.container_id)
            if isinstance(self.cpu_source, CgroupV2):
                logger.info("resources: reading cgroup v2 group {}", self.cpu_source.path)
            elif isinstance(self.cpu_source, CgroupV1):
                source = self.cpu_source
                logger.info("resources: reading cgroup v1 groups cpuacct {}, cpu {}, memory {}",
                            source.cpuacct, source.cpu, source.memory)  # fmt: skip
            elif cfg.container_id:
                logger.warning("resources: no cgroup of container {} under {}", cfg.container_id, self.root)
            if self.cpu_source is None and (self.root / "proc" / "stat").exists():
                logger.info("resources: no cgroup under {}; reading the host's /proc", self.root)
                self.cpu_source = ProcHost(self.root)
        if cfg.gpu in ("auto", "nvml"):
            try:
                self.nvml = gpu.NvmlReader.open()
            except gpu.NvmlUnavailableError as exc:
                if not (cfg.gpu == "auto" and cfg.dcgm_url):
                    gpu.log_unavailable(str(exc))
        if cfg.npu in ("auto", "npu-smi") and not cfg.npu_exporter_url:
            self.npu_smi = shutil.which(cfg.npu_smi_command)
            if self.npu_smi is None:
                logger.info("resources: no NPU figures ({} not found); ma_container_npu_* will be absent",
                            cfg.npu_smi_command)  # fmt: skip

    def _snapshot(self) -> Snapshot:
        meminfo = self.root / "proc" / "meminfo"
        host_mem = parse_meminfo(meminfo.read_text()).get("MemTotal") if meminfo.exists() else None
        net_dev = self.root / "proc" / "net" / "dev"
        net = None
        if net_dev.exists():
            net = total_bytes(parse_net_dev(net_dev.read_text()), self.config.exclude_interfaces)
        return Snapshot(
            at_s=self.monotonic(),
            host_cpus=self.cpu_count,
            host_memory_bytes=host_mem,
            cgroup=self.cpu_source.read() if self.cpu_source is not None else None,
            net=net,
        )

    async def _get(self, url: str) -> str:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_s, trust_env=False)
        response = await self._client.get(url)
        response.raise_for_status()
        return response.text

    async def _gpus(self) -> list[DeviceReading]:
        if self.nvml is not None:
            return self.nvml.read()
        if self.config.gpu in ("auto", "dcgm") and self.config.dcgm_url:
            return gpu.parse_dcgm(await self._get(self.config.dcgm_url), self.identity.get("source", ""))
        return []

    async def _npus(self) -> list[DeviceReading]:
        if self.config.npu in ("auto", "exporter") and self.config.npu_exporter_url:
            return npu.parse_npu_exporter(await self._get(self.config.npu_exporter_url))
        if self.npu_smi is not None:
            proc = await asyncio.create_subprocess_exec(
                self.npu_smi, "info", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), self.config.timeout_s)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
            return npu.parse_npu_smi_info(out.decode(errors="replace"))
        return []

    async def _devices(self, kind: str, read: Callable[[], object]) -> dict[str, float]:
        try:
            readings = await read()  # type: ignore[misc]
        except Exception as exc:
            logger.warning(
                "resources: reading {} failed ({}: {}); skipped this round", kind, type(exc).__name__, exc
            )
            return {}
        return device_figures(kind, combine(readings))

    async def read_once(self) -> list[Sample]:
        """Read everything now; hand the batch on (if there is a consumer) and return it."""
        if not self._started:
            self._pick_sources()
        figures: dict[str, float] = {}
        try:
            cur = self._snapshot()
            figures.update(cpu_memory_figures(self._prev, cur))
            figures.update(network_figures(self._prev, cur))
            self._prev = cur
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("resources: reading cgroup/proc failed ({}); skipped this round", exc)
        figures.update(await self._devices("gpu", self._gpus))
        figures.update(await self._devices("npu", self._npus))
        ts_ms = math.floor(self.clock() * 1000)
        batch = [
            Sample(to_labels({**self.identity, METRIC_NAME: name}), ts_ms, float(value))
            for name, value in figures.items()
        ]
        if self.consumer is not None:
            await self.consumer.consume(batch)
        return batch

    async def run(self) -> None:
        """Read at every interval boundary until cancelled or ``stop()``; errors are logged."""
        interval = self.config.interval_s
        while True:
            now = self.clock()
            await asyncio.sleep((math.floor(now / interval) + 1) * interval - now)
            try:
                await self.read_once()
            except Exception:
                logger.exception("resources: a read failed; continuing")

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Stop ``run()`` started by ``start()`` and release clients; safe twice and without a start."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        if self.nvml is not None:
            nvml, self.nvml = self.nvml, None
            nvml.close()
