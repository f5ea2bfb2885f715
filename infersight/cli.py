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
from infersight.config import Config, audit_paths, load_config
from infersight.logs import add_sink
from infersight.startup import HeldLog, StartupError, one_line, redact_dsn, route_stdlib_logging
from model.durations import parse_duration_ms
from model.errors import ConfigError

# Exit status for "cannot start": configuration, busy port, unwritable folder, unreachable store.
EXIT_CANNOT_START = 2


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
    audit.add_argument(
        "action", choices=["verify"], help="verify: check the hash chain against the signed digests"
    )
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


def _cmd_demo(config: Config, started: Callable[[], None]) -> int:
    from infersight.demo import run_demo

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)  # noqa: T201 - the demo's progress display

    def on_started() -> None:
        started()
        if config.demo.duration_s is None:
            progress("infersight demo: running until Ctrl-C (use --duration SECONDS to stop by itself)")

    report = run_until_signal(lambda stop: run_demo(config, stop, progress, on_started))
    print(report.render())  # noqa: T201 - the demo's result table is its output
    return 0


async def _serve_forever(
    stop: asyncio.Event,
    start: Callable[[], Awaitable[Any]],
    stop_fn: Callable[[], Awaitable[Any]],
    started: Callable[[], None],
) -> None:
    """Start, tell ``started``, wait for a signal, stop. A failed start stops what had started
    before the error goes on (a thread left running would keep the process from exiting)."""
    try:
        await start()
    except BaseException:
        with contextlib.suppress(Exception):
            await stop_fn()
        raise
    started()
    try:
        await stop.wait()
    finally:
        await stop_fn()


def _cmd_run(config: Config, started: Callable[[], None]) -> int:
    from infersight.run import Runtime

    if not config.targets:
        raise ConfigError("targets: `infersight run` needs at least one target (see README)")
    runtime = Runtime(config)
    run_until_signal(lambda stop: _serve_forever(stop, runtime.start, runtime.stop, started))
    return 0


def _cmd_server(config: Config, started: Callable[[], None]) -> int:
    from infersight.run import Runtime

    # With no targets it is the server: store, API, ingest; a ClickHouse server that is down at
    # start is waited for (ingest is logged, reads answer 503) rather than fatal.
    runtime = Runtime(config, wait_for_store=False)
    run_until_signal(lambda stop: _serve_forever(stop, runtime.start, runtime.stop, started))
    return 0


def _cmd_sidecar(config: Config, started: Callable[[], None]) -> int:
    from infersight.sidecar_process import SidecarProcess

    if not config.targets:
        raise ConfigError("targets: `infersight sidecar` needs at least one target")
    try:
        process = SidecarProcess(config)
    except StartupError:
        raise
    except Exception as err:  # opening a ClickHouse server store: the operator's to fix
        raise StartupError(
            f"store.dsn: cannot open {redact_dsn(config.store.dsn)}: {one_line(err)}"
        ) from None
    run_until_signal(lambda stop: _serve_forever(stop, process.start, process.stop, started))
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
    ``GET /api/v1/audit/verify`` on a running server. Exit 0 intact, 1 tampered, 2 cannot check."""
    from store.audit import AuditLog
    from store.audit_digests import AuditKeyError, DigestFolder, load_or_create_key
    from store.open import open_store

    folder = None
    if config.audit.digests:
        digest_dir, key_file = audit_paths(config)
        if not key_file.exists():
            if digest_dir.is_dir() and any(digest_dir.iterdir()):
                raise StartupError(
                    f"audit.key_file: {key_file} does not exist: the digests cannot be checked"
                )
        else:
            try:
                folder = DigestFolder(digest_dir, load_or_create_key(key_file))
            except AuditKeyError as err:
                raise StartupError(f"audit.key_file: {err}") from None
    try:
        store = open_store(config.store.dsn, config.store.database)
    except Exception as err:
        raise StartupError(
            f"store.dsn: cannot open {redact_dsn(config.store.dsn)}: {one_line(err)}"
        ) from None
    try:
        verdict = AuditLog(store.backend, folder).verify(args.from_ms, args.to_ms)
    finally:
        store.close()
    print(verdict.render())  # noqa: T201 - the command's output
    return 0 if verdict.intact else 1


COMMANDS: dict[str, Callable[[Config, Callable[[], None]], int]] = {
    "demo": _cmd_demo,
    "run": _cmd_run,
    "server": _cmd_server,
    "sidecar": _cmd_sidecar,
}


def _cannot_start(message: str) -> int:
    print(f"infersight: {message}", file=sys.stderr, flush=True)  # noqa: T201 - the one line
    return EXIT_CANNOT_START


def main(argv: list[str] | None = None) -> int:
    """Run a command. A start that fails prints one line and exits 2; log lines written while
    starting are held until the start succeeded (``log_level: DEBUG`` shows them at once)."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, _overrides(args))
    except (ConfigError, ValueError) as err:
        return _cannot_start(f"configuration error: {one_line(err)}")
    sink = HeldLog()
    if config.log_level in ("TRACE", "DEBUG"):
        sink.release()
    logger.remove()
    add_sink(sink.write, config.log_level)  # INFERSIGHT_LOG_FORMAT=json: one JSON object per line
    route_stdlib_logging()
    starting = [True]

    def started() -> None:
        starting[0] = False
        sink.release()

    try:
        if args.command == "audit":
            code = _cmd_audit(config, args)
            started()
            return code
        if args.command == "rules":
            started()
            return _cmd_rules(config, args)
        if args.command == "dashboards":
            started()
            return _cmd_dashboards(config)
        return COMMANDS[args.command](config, started)
    except ConfigError as err:
        sink.drop()
        return _cannot_start(f"configuration error: {one_line(err)}")
    except StartupError as err:
        sink.drop()
        return _cannot_start(one_line(err))
    except Exception as err:
        if not starting[0]:
            raise
        sink.drop()  # anything else before the start succeeded is still "cannot start"
        return _cannot_start(f"cannot start: {type(err).__name__}: {one_line(err)}")


if __name__ == "__main__":
    sys.exit(main())
