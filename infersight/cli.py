"""The ``infersight`` command: ``run``, ``demo``, ``sidecar``, ``server``, ``dashboards``.

Configuration comes from ``--config FILE`` (YAML, see ``infersight/config.py``); flags such as
``--duration`` or the generic ``--set section.key=value`` are applied over the file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loguru import logger

from collector.serve import run_event_loop
from infersight.config import Config, load_config
from model.durations import parse_duration_ms
from model.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="infersight", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", help="YAML configuration file")
    common.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a configuration value",
    )
    common.add_argument("--log-level", help="TRACE, DEBUG, INFO, WARNING, ERROR")
    common.add_argument("--listen", help="API address HOST:PORT (server.listen)")
    common.add_argument("--data", help="embedded store data folder (store.dsn = chdb://DATA)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", parents=[common], help="store, API and a sidecar per configured target, one process"
    )
    demo = sub.add_parser("demo", parents=[common], help="the same with simulated engines and load")
    demo.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    demo.add_argument("--services", type=int, help="simulated services (default 2)")
    demo.add_argument("--pods", type=int, help="pods per service (default 2)")
    demo.add_argument("--concurrency", type=int, help="concurrent clients (default 8)")
    demo.add_argument("--interval", help="scrape interval, e.g. 10s (default 10s)")
    sub.add_parser("sidecar", parents=[common], help="scrape configured targets and ship to the server")
    sub.add_parser("server", parents=[common], help="the API and ingest endpoint over the store")
    audit = sub.add_parser("audit", parents=[common], help="audit trail tools")
    audit.add_argument("action", choices=["verify"], help="verify: check the hash chain")
    audit.add_argument("--from", dest="from_ms", type=int, default=0, help="record time, epoch ms")
    audit.add_argument("--to", dest="to_ms", type=int, default=2**62, help="record time, epoch ms")
    rules = sub.add_parser("rules", parents=[common], help="write alert rules YAML and its promtool tests")
    rules.add_argument("--out", help="output folder (default alerts/rules)")
    dash = sub.add_parser("dashboards", parents=[common], help="write Grafana dashboard JSON")
    dash.add_argument("--out", help="output folder (dashboards.out_dir)")
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    sets = list(args.set)
    flag_map = {
        "log_level": "log_level",
        "listen": "server.listen",
        "duration": "demo.duration_s",
        "services": "demo.services",
        "pods": "demo.pods_per_service",
        "concurrency": "demo.concurrency",
        "interval": "demo.scrape_interval_s",
    }
    for attr, key in flag_map.items():
        value = getattr(args, attr, None)
        if value is not None:
            if attr == "interval":
                value = parse_duration_ms(value) / 1000
            sets.append(f"{key}={value}")
    if args.command == "dashboards" and args.out:
        sets.append(f"dashboards.out_dir={args.out}")
    if args.data:
        sets.append(f"store.dsn=chdb://{Path(args.data).resolve()}")
    return sets


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[Any]]) -> Any:
    """Run ``main(stop)`` where Ctrl-C / SIGTERM set ``stop`` instead of killing the loop."""

    async def runner() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    return run_event_loop(runner())


def _cmd_demo(config: Config) -> int:
    from infersight.demo import run_demo

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)  # noqa: T201 - the demo's progress display

    if config.demo.duration_s is None:
        progress("infersight demo: running until Ctrl-C (use --duration SECONDS to stop by itself)")
    report = run_until_signal(lambda stop: run_demo(config, stop, progress))
    print(report.render())  # noqa: T201 - the demo's result table is its output
    return 0


async def _serve_forever(stop: asyncio.Event, start: Callable[[], Awaitable[Any]], stop_fn: Any) -> None:
    await start()
    try:
        await stop.wait()
    finally:
        await stop_fn()


def _cmd_run(config: Config) -> int:
    from infersight.run import Runtime

    if not config.targets:
        raise ConfigError("targets: `infersight run` needs at least one target (see README)")
    runtime = Runtime(config)
    run_until_signal(lambda stop: _serve_forever(stop, runtime.start, runtime.stop))
    return 0


def _cmd_server(config: Config) -> int:
    from infersight.run import Runtime

    runtime = Runtime(config)  # with no targets it is the server: store, API, ingest
    run_until_signal(lambda stop: _serve_forever(stop, runtime.start, runtime.stop))
    return 0


def _cmd_sidecar(config: Config) -> int:
    from infersight.sidecar_process import SidecarProcess

    if not config.targets:
        raise ConfigError("targets: `infersight sidecar` needs at least one target")
    process = SidecarProcess(config)
    run_until_signal(lambda stop: _serve_forever(stop, process.start, process.stop))
    return 0


def _cmd_rules(config: Config, args: argparse.Namespace) -> int:
    from alerts.generate import write_rules

    for path in write_rules(config.alerts.rules, Path(args.out or "alerts/rules")):
        print(path)  # noqa: T201 - the command's output is the list of files written
    return 0


def _cmd_dashboards(config: Config) -> int:
    from dashboards.build import write_dashboards

    for path in write_dashboards(Path(config.dashboards.out_dir)):
        print(path)  # noqa: T201 - the command's output is the list of files written
    return 0


def _cmd_audit(config: Config, args: argparse.Namespace) -> int:
    """Opens the store directly: run it while the server is stopped (chDB has one owner), or use
    ``GET /api/v1/audit/verify`` on a running server."""
    from store.audit import AuditLog
    from store.open import open_store

    store = open_store(config.store.dsn, config.store.database)
    try:
        checked, broken = AuditLog(store.backend).verify(args.from_ms, args.to_ms)
    finally:
        store.close()
    if broken is None:
        print(f"audit trail intact: {checked} records checked")  # noqa: T201 - the command's output
        return 0
    print(  # noqa: T201 - the command's output
        f"audit trail TAMPERED: record {broken.kind} at seq {broken.seq} "
        f"(trace_id {broken.trace_id}): {broken.detail}"
    )
    return 1


COMMANDS: dict[str, Callable[[Config], int]] = {
    "demo": _cmd_demo,
    "run": _cmd_run,
    "server": _cmd_server,
    "sidecar": _cmd_sidecar,
    "dashboards": _cmd_dashboards,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, _overrides(args))
    except (ConfigError, ValueError) as err:
        print(f"infersight: configuration error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    logger.remove()
    # Resolve sys.stderr at each write, so a replaced stream (tests, daemons) is followed.
    logger.add(lambda message: sys.stderr.write(message), level=config.log_level)
    try:
        if args.command == "audit":
            return _cmd_audit(config, args)
        if args.command == "rules":
            return _cmd_rules(config, args)
        return COMMANDS[args.command](config)
    except ConfigError as err:
        print(f"infersight: configuration error: {err}", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main())
