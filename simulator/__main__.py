"""``python -m simulator --port 8000 --ttft-median-ms 80 ...``: one fake vLLM engine on a port.

Every SimulatorConfig field is an option (``model_name`` → ``--model-name``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys

from loguru import logger

from collector.serve import run_event_loop
from model.errors import ConfigError
from simulator.config import SimulatorConfig
from simulator.server import SimulatorServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    for field in dataclasses.fields(SimulatorConfig):
        kind = {"float": float, "int": int}.get(str(field.type).split(" ")[0], str)
        if field.name == "seed":
            kind = int
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, type=kind, default=None)
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig named by the command line; options left out keep their defaults."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(SimulatorConfig)}
    config = SimulatorConfig(**{k: v for k, v in given.items() if v is not None})
    config.validate()
    return config


async def _serve(host: str, port: int, config: SimulatorConfig) -> None:
    server = SimulatorServer(config, host=host, port=port)
    bound = await server.start()
    logger.info("simulator {} serving on http://{}:{}", config.model_name, host, bound)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        logger.error("{}", exc)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        run_event_loop(_serve(args.host, args.port, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
