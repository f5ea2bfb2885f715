"""The ``infersight`` command line: one subcommand per job, each with its own help and example.

Configuration comes from ``--config FILE`` (YAML, ``infersight/config.py``); ``--set KEY=VALUE``
and the few flags a command has (``--listen``, ``--data``, ``--duration`` …) are applied over it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loguru import logger

from collector.serve import run_until_signal
from infersight.config import DEMO_DATA, Config, StoreSection, audit_paths, load_config
from infersight.startup import HeldLog, StartupError, one_line, redact_dsn, route_stdlib_logging
from model.durations import parse_duration_ms
from model.errors import ConfigError

# Exit status for "cannot start": configuration, busy port, unwritable folder, unreachable store.
EXIT_CANNOT_START = 2

DESCRIPTION = """\
Self-hosted observability for LLM inference services: a sidecar scrapes each
engine's /metrics, series land in ClickHouse (embedded chDB by default), and a
Prometheus-compatible API serves Grafana, alert rules, events and an audit trail.

Start with `infersight demo --duration 60`, then `infersight COMMAND --help`."""

COMMANDS_EPILOG = """\
examples:
  infersight demo --duration 60                 simulated services, ~1 minute, then a summary
  infersight run --config examples/run.yaml     your engines, one machine, one process
  infersight query 'up'                         ask a running server"""

_HELP: dict[str, tuple[str, str, str]] = {
    # command: (one line for the command list, description, example)
    "demo": (
        "simulated engines, sidecars, store and API in one process; prints a summary",
        "Starts simulated vLLM services (no GPU needed), a sidecar per pod, the embedded\n"
        "store and the API, sends chat requests through them, then prints requests by\n"
        "code, QPS and TTFT/TPOT read back through the PromQL API, the events and the\n"
        "audit trail. Each run starts from an empty data folder (default data/demo)\n"
        "unless --keep-data is given.",
        "infersight demo --duration 60 --services 2 --pods 2",
    ),
    "run": (
        "store, API and a sidecar per configured target, one process",
        "One machine: the embedded store, the Prometheus API and a sidecar for every\n"
        "target in the configuration file (scrapes, optional ingress proxy, resources,\n"
        "probes). Runs until Ctrl-C.",
        "infersight simulator --port 8000 &          # or your vLLM on port 8000\n"
        "  infersight run --config examples/run.yaml",
    ),
    "server": (
        "the store, API and ingest endpoint only (sidecars ship to it)",
        "The central part of a split set-up: the store, the Prometheus API, remote\n"
        "write and the ingest endpoint that `infersight sidecar` processes ship to.\n"
        "It scrapes nothing: targets, proxy, resources and probes in its file are the\n"
        "sidecars' and are ignored here. Runs until Ctrl-C.",
        "infersight server --config examples/server.yaml",
    ),
    "sidecar": (
        "scrape the configured targets and ship to the server",
        "Next to one pod: scrapes its engine, runs the optional ingress proxy, resource\n"
        "readers and probes, and ships samples, sketches and events to sidecar.ship_to\n"
        "(an `infersight server`), buffering on disk while it is unreachable.",
        "infersight sidecar --config examples/sidecar.yaml",
    ),
    "query": (
        "run a PromQL query against a running server",
        "Sends one PromQL query to a running server's /api/v1/query (a table, one row\n"
        "per series) or, with --start/--end/--step, /api/v1/query_range (one line per\n"
        "series). Times: Unix seconds, RFC 3339, 'now' or 'now-1h'. The server defaults\n"
        "to $INFERSIGHT_SERVER or http://127.0.0.1:9091, the key to $INFERSIGHT_KEY.",
        "infersight query 'sum by (service_name) (rate(infer_service_request_total[1m]))'\n"
        "  infersight query 'infer_service_request_total' --start now-15m --step 30s",
    ),
    "simulator": (
        "run the bundled simulated vLLM engine alone",
        "",
        "",
    ),
    "audit": (
        "check the audit trail against its signed digests",
        "verify: checks the audit trail's hash chain against the signed digests kept\n"
        "outside the database. By default it asks a running server (--server, default\n"
        "$INFERSIGHT_SERVER or http://127.0.0.1:9091; with auth on, an admin or * key\n"
        "through --key or $INFERSIGHT_KEY). With --data or --config it opens a stopped\n"
        "server's store itself (a folder that holds no store is refused, never created).\n"
        "Exit status: 0 intact, 1 tampered, 2 cannot check.",
        "infersight audit verify\n"
        '  infersight audit verify --server http://10.0.0.5:9091 --key "$INFERSIGHT_ADMIN_KEY"\n'
        "  infersight audit verify --data data/demo        # with its server stopped",
    ),
    "dashboards": (
        "write the Grafana dashboards as JSON",
        "Writes the Grafana dashboards (service, deployment, pod, custom, events) as JSON\n"
        "to import with a Prometheus data source pointing at the server.",
        "infersight dashboards --out dashboards/json",
    ),
    "rules": (
        "write the alert rules YAML and its promtool tests",
        "Writes the alert rules as Prometheus rule files with their promtool unit tests;\n"
        "with SLOs in the configuration (slos:), their burn-rate rules and tests too.",
        "infersight rules --out alerts/rules",
    ),
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("infersight")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", "-c", metavar="FILE", help="YAML configuration file (see examples/)")
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set scrape.interval=5s --set targets[0].engine=sglang",
    )
    group.add_argument("--log-level", help="TRACE, DEBUG, INFO, WARNING or ERROR (log_level)")


def _listen_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="HOST:PORT", help="API address (server.listen)")


def _data_flag(parser: argparse.ArgumentParser, what: str = "embedded store data folder") -> None:
    parser.add_argument("--data", metavar="DIR", help=f"{what} (store.dsn = chdb://DIR)")


def _server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        help="the server's URL (default $INFERSIGHT_SERVER or http://127.0.0.1:9091)",
    )
    parser.add_argument(
        "--key",
        metavar="KEY",
        help="API key when auth is on (default $INFERSIGHT_KEY, $INFERSIGHT_ADMIN_KEY)",
    )


def _command(sub: Any, name: str) -> argparse.ArgumentParser:
    line, description, example = _HELP[name]
    return sub.add_parser(
        name,
        help=line,
        description=description or line,
        epilog=f"example:\n  {example}" if example else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infersight",
        description=DESCRIPTION,
        epilog=COMMANDS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(sub, "demo")
    _config_flags(demo)
    _listen_flag(demo)
    _data_flag(demo, f"data folder (default {DEMO_DATA}; emptied first unless --keep-data)")
    demo.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this long (default: Ctrl-C)"
    )
    demo.add_argument("--services", type=int, help="simulated services (default 2)")
    demo.add_argument("--pods", type=int, help="pods per service (default 2)")
    demo.add_argument("--concurrency", type=int, help="concurrent clients (default 8)")
    demo.add_argument("--interval", metavar="DURATION", help="scrape interval, e.g. 10s (default 10s)")
    demo.add_argument(
        "--keep-data", action="store_true", help="add to the data folder instead of emptying it"
    )

    for name in ("run", "server"):
        command = _command(sub, name)
        _config_flags(command)
        _listen_flag(command)
        _data_flag(command)
    _config_flags(_command(sub, "sidecar"))

    query = _command(sub, "query")
    query.add_argument("promql", metavar="PROMQL", help="the PromQL expression (quote it for the shell)")
    _server_flags(query)
    query.add_argument("--time", metavar="TIME", help="instant query at this time (default: now)")
    query.add_argument("--start", metavar="TIME", help="range query from (default: an hour before --end)")
    query.add_argument("--end", metavar="TIME", help="range query to (default: now)")
    query.add_argument(
        "--step", metavar="DURATION", help="range query resolution, e.g. 30s (default: ~120 points)"
    )

    from simulator.__main__ import DESCRIPTION as SIM_DESCRIPTION
    from simulator.__main__ import EXAMPLE as SIM_EXAMPLE
    from simulator.__main__ import add_options

    simulator = sub.add_parser(
        "simulator",
        help=_HELP["simulator"][0],
        description=SIM_DESCRIPTION,
        epilog=SIM_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(simulator)

    audit = _command(sub, "audit")
    audit.add_argument("action", choices=["verify"], help="verify: check the chain against the digests")
    _server_flags(audit)
    _config_flags(audit)
    _data_flag(audit, "a stopped server's data folder, opened here instead of asking --server")
    audit.add_argument(
        "--from", dest="from_ms", type=int, default=0, metavar="MS", help="record time, epoch ms"
    )
    audit.add_argument(
        "--to", dest="to_ms", type=int, default=2**62, metavar="MS", help="record time, epoch ms"
    )

    for name, default in (
        ("dashboards", "dashboards.out_dir, default dashboards/json"),
        ("rules", "alerts/rules"),
    ):
        command = _command(sub, name)
        _config_flags(command)
        command.add_argument("--out", metavar="DIR", help=f"output folder ({default})")
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    sets = list(getattr(args, "set", []))
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
    if getattr(args, "data", None):
        sets.append(f"store.dsn=chdb://{Path(args.data).resolve()}")
    return sets


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


def server_only(config: Config) -> Config:
    """The configuration ``infersight server`` runs: what scrapes or listens next to a pod
    (targets, proxy, resources, probes, the sidecar's own /metrics) is the sidecar's, so one file
    can serve both commands without the server scraping twice or taking the sidecar's ports."""
    return dataclasses.replace(
        config,
        targets=(),
        proxy=None,
        resources=None,
        probes=(),
        sidecar=dataclasses.replace(config.sidecar, metrics_listen=""),
    )


def _cmd_server(config: Config, started: Callable[[], None]) -> int:
    from infersight.run import Runtime

    ignored = [name for name in ("targets", "proxy", "resources", "probes") if getattr(config, name)]
    if ignored:
        logger.info(
            "{} in the configuration are the sidecar's: `infersight server` ignores them", ", ".join(ignored)
        )
    # With no targets it is the server: store, API, ingest; a ClickHouse server that is down at
    # start is waited for (ingest is logged, reads answer 503) rather than fatal.
    runtime = Runtime(server_only(config), wait_for_store=False)
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
    from alerts.slo_rules import write_slo_rules

    out = Path(args.out or "alerts/rules")
    paths = write_rules(config.alerts.rules, out)
    if config.slos:
        paths += write_slo_rules(config.slos, out)
    for path in paths:
        print(path)  # noqa: T201 - the command's output is the list of files written
    return 0


def _cmd_dashboards(config: Config) -> int:
    from dashboards.build import write_dashboards

    for path in write_dashboards(Path(config.dashboards.out_dir)):
        print(path)  # noqa: T201 - the command's output is the list of files written
    return 0


def _cmd_audit(config: Config, args: argparse.Namespace) -> int:
    """Opens a stopped server's store here. Exit 0 intact, 1 tampered, 2 cannot check."""
    from store.audit import AuditLog
    from store.audit_digests import AuditKeyError, DigestFolder, load_or_create_key
    from store.chdb import StoreInUseError
    from store.open import chdb_path, open_store

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
    if config.store.dsn.startswith("chdb://"):
        data = Path(chdb_path(config.store.dsn))
        if not (data / "metadata").is_dir():  # chDB's own: a store was made here
            raise StartupError(
                f"store.dsn: {data} holds no store (give the data folder of a stopped server with "
                "--data DIR, or ask a running one: infersight audit verify --server URL)"
            )
    try:
        # no points or series read here
        store = open_store(config.store.dsn, config.store.database, recent=(1.0, 0), series_index=False)
    except StoreInUseError as err:
        raise StartupError(
            f"{one_line(err)}; or: infersight audit verify --server http://{config.server.listen}"
        ) from None
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


def _verdict_from_api(data: dict[str, Any]) -> Any:
    from store.audit_chain import Tampering
    from store.audit_verify import AuditVerdict

    return AuditVerdict(
        checked=int(data["checked"]),
        covered_to_seq=int(data["covered_to_seq"]),
        not_covered=int(data["not_covered"]),
        digests=int(data["digests"]),
        problems=tuple(
            Tampering(p["kind"], int(p["seq"]), p.get("trace_id") or "", p.get("detail") or "")
            for p in data.get("problems", [])
        ),
        digests_enabled=bool(data.get("digests_enabled", True)),
    )


def _cmd_audit_remote(args: argparse.Namespace) -> int:
    """``GET /api/v1/audit/verify`` of a running server, printed as the local check prints it."""
    from infersight.api_client import ApiError, Unreachable, api_key, get_json, server_url

    server = server_url(args.server)
    params = {"from": args.from_ms, "to": args.to_ms}
    try:
        body = get_json(server, "/api/v1/audit/verify", params, api_key(args.key), timeout_s=600)
    except ApiError as err:
        return _cannot_start(f"{server} refused the check: {err}")
    except Unreachable as err:
        return _cannot_start(
            f"{err} (is `infersight server` running there? For a stopped server's folder: --data DIR)"
        )
    verdict = _verdict_from_api(body["data"])
    print(verdict.render())  # noqa: T201 - the command's output
    return 0 if verdict.intact else 1


def _cmd_query(args: argparse.Namespace) -> int:
    """Exit 0 answered, 1 the server refused the query, 2 no answer (or wrong flags)."""
    from infersight.api_client import ApiError, Unreachable, api_key, server_url
    from infersight.query_command import build_request, render, run_query

    try:
        request = build_request(args.promql, args.time, args.start, args.end, args.step)
    except ValueError as err:
        return _cannot_start(str(err))
    try:
        data = run_query(server_url(args.server), request, api_key(args.key))
    except ApiError as err:
        print(f"infersight: query failed: {err}", file=sys.stderr)  # noqa: T201 - the one line
        return 1
    except Unreachable as err:
        return _cannot_start(str(err))
    print(render(data))  # noqa: T201 - the command's output
    return 0


COMMANDS: dict[str, Callable[[Config, Callable[[], None]], int]] = {
    "demo": _cmd_demo,
    "run": _cmd_run,
    "server": _cmd_server,
    "sidecar": _cmd_sidecar,
}


def _cannot_start(message: str) -> int:
    print(f"infersight: {message}", file=sys.stderr, flush=True)  # noqa: T201 - the one line
    return EXIT_CANNOT_START


def _demo_config(config: Config, args: argparse.Namespace) -> Config:
    """The demo's data folder: ``--data``, the file's ``store.dsn``, or ``data/demo`` (never the
    default store folder a real ``run`` or ``server`` would use), emptied unless ``--keep-data``."""
    from infersight.demo import DemoDataError, prepare_data_folder

    if not getattr(args, "data", None) and config.store.dsn == StoreSection().dsn:
        dsn = f"chdb://{Path(DEMO_DATA).resolve()}"
        config = dataclasses.replace(config, store=dataclasses.replace(config.store, dsn=dsn))
    try:
        prepare_data_folder(config, keep=args.keep_data)
    except DemoDataError as err:
        raise StartupError(f"store.dsn: {err}") from None
    except OSError as err:
        raise StartupError(f"store.dsn: cannot prepare the demo's data folder: {one_line(err)}") from None
    return config


def _local_audit(args: argparse.Namespace) -> bool:
    """``audit verify`` opens the store itself when told where it is; otherwise it asks a server."""
    local = bool(args.data or args.config or args.set)
    if local and args.server:
        raise ConfigError("audit verify: give --server (a running server) or --data/--config (a stopped one)")
    return local


def main(argv: list[str] | None = None) -> int:
    """Run a command. A start that fails prints one line and exits 2; log lines written while
    starting are held until the start succeeded (``log_level: DEBUG`` shows them at once)."""
    args = _parser().parse_args(argv)
    if args.command == "query":
        return _cmd_query(args)
    if args.command == "simulator":
        from simulator.__main__ import serve

        return serve(args)
    try:
        if args.command == "audit" and not _local_audit(args):
            return _cmd_audit_remote(args)
        config = load_config(args.config, _overrides(args))
    except (ConfigError, ValueError) as err:
        return _cannot_start(f"configuration error: {one_line(err)}")
    sink = HeldLog()
    if config.log_level in ("TRACE", "DEBUG"):
        sink.release()
    logger.remove()
    logger.add(sink.write, level=config.log_level)
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
        if args.command == "demo":
            config = _demo_config(config, args)
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
