"""The sidecar collector: scrape → parse → normalise (engine adapter + identity labels) → Consumer.

It never imports exporters, store or query: the next hop is handed in as a ``Consumer``.
"""

from collector.config import ScrapeConfig, TargetConfig
from collector.parse import ParsedSample, ParseError, parse_body, parse_text
from collector.pipeline import Consumer, ListConsumer
from collector.sidecar import Sidecar

__all__ = [
    "Consumer",
    "ListConsumer",
    "ParseError",
    "ParsedSample",
    "ScrapeConfig",
    "Sidecar",
    "TargetConfig",
    "parse_body",
    "parse_text",
]
