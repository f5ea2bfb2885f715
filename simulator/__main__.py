"""One fake vLLM engine on a port: ``infersight simulator`` or ``python -m simulator``.

Every SimulatorConfig field is an option (``model_name`` → ``--model-name``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys

from loguru import logger

from collector.serve import run_until_signal
from model.errors import ConfigError
from simulator.config import SimulatorConfig
from simulator.server import SimulatorServer

DESCRIPTION = """\
A simulated vLLM engine for trying infersight without a GPU: OpenAI-style
/v1/completions and /v1/chat/completions (streamed or not) with drawn latencies
and token counts, vLLM's /metrics, /health, and DCGM and npu-exporter stand-ins
at /dcgm/metrics and /npu-exporter/metrics. It runs until Ctrl-C."""

EXAMPLE = """\
example:
  infersight simulator --port 8000 --ttft-median-ms 80 --error-rate 0.02
  curl -s http://127.0.0.1:8000/v1/completions -H 'content-type: application/json' \\
       -d '{"model": "sim-model", "prompt": "hi", "max_tokens": 8}'
  curl -s http://127.0.0.1:8000/metrics | head"""


def add_options(parser: argparse.ArgumentParser) -> None:
    """The simulator's options, on its own parser or on ``infersight simulator``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    defaults = SimulatorConfig()
    for field in dataclasses.fields(SimulatorConfig):
        kind = {"float": float, "int": int}.get(str(field.type).split(" ")[0], str)
        if field.name == "seed":
            kind = int
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            dest=field.name,
            type=kind,
            default=None,
            help=f"default {getattr(defaults, field.name)}",
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description=DESCRIPTION,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig named by the command line; options left out keep their defaults."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(SimulatorConfig)}
    config = SimulatorConfig(**{k: v for k, v in given.items() if v is not None})
    config.validate()
    return config


async def _serve(host: str, port: int, config: SimulatorConfig, stop: asyncio.Event) -> None:
    server = SimulatorServer(config, host=host, port=port)
    bound = await server.start()
    logger.info("simulator {} serving on http://{}:{}", config.model_name, host, bound)
    try:
        await stop.wait()
    finally:
        await server.stop()


def serve(args: argparse.Namespace) -> int:
    """Run the engine the parsed options name until Ctrl-C or SIGTERM (then exit 0); 2 with one
    line for a wrong option."""
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"simulator: {exc}", file=sys.stderr)  # noqa: T201 - the one line of a failed start
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            run_until_signal(lambda stop: _serve(args.host, args.port, config, stop))
    except OSError as exc:  # a busy port, an address not on this machine
        print(f"simulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return serve(_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
