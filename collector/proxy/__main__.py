"""``python -m collector.proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8000``: the proxy alone.

For benchmarks and trying it out; in production ``infersight sidecar`` runs it with the rest of
the sidecar. Series are logged at DEBUG every flush; nothing is shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from loguru import logger

from collector.config import ProxyConfig
from collector.pipeline import ListConsumer
from collector.proxy.ingress import IngressProxy
from collector.serve import run_event_loop
from model.errors import ConfigError


class _Drop(ListConsumer):
    async def consume(self, batch: list) -> None:  # type: ignore[type-arg]
        logger.debug("proxy: {} samples", len(batch))


async def _serve(config: ProxyConfig) -> None:
    proxy = IngressProxy(config, {}, _Drop())
    await proxy.start()
    try:
        await asyncio.Event().wait()
    finally:
        await proxy.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collector.proxy", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:9000")
    parser.add_argument("--upstream", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    try:
        config = ProxyConfig.from_dict({"listen": args.listen, "upstream": args.upstream})
    except ConfigError as exc:
        logger.error("{}", exc)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        run_event_loop(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
