"""The ingress proxy: ``listen`` → ``upstream``, measuring every request as it passes.

It forwards bytes unchanged and unbuffered; what it learns per request becomes a
``RequestObservation`` (timing.py), aggregated into the guide's series by ``ProxyStats``.
"""

from collector.proxy.ingress import IngressProxy
from collector.proxy.observe import ValueObserver, feed_observer
from collector.proxy.server import ProxyApp
from collector.proxy.sse import StreamScanner
from collector.proxy.stats import ProxyStats
from collector.proxy.timing import RequestObservation, StreamTimer

__all__ = [
    "IngressProxy",
    "ProxyApp",
    "ProxyStats",
    "RequestObservation",
    "StreamScanner",
    "StreamTimer",
    "ValueObserver",
    "feed_observer",
]
