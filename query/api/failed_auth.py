"""Failed authentications counted per client address, so guessing keys is slow and cheap to refuse.

After ``max_failures`` failed attempts inside ``window_s`` an address is answered 429 (with
``Retry-After``) until its window ends, before any key is looked up in the store. The table is
bounded (least recently failing addresses are forgotten first), so many addresses cost bounded
memory. Behind a reverse proxy every caller shares the proxy's address: raise the limit there.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_FAILURES = 30
WINDOW_S = 60.0
MAX_ADDRESSES = 10_000


@dataclass(slots=True)
class _Window:
    started: float
    failures: int


class FailedAuthLimiter:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_s <= 0 or max_addresses < 1:
            raise ValueError("max_failures, window_s and max_addresses: must be positive")
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self.refused = 0  # requests answered 429, for tests and metrics

    def _live(self, address: str, now: float) -> _Window | None:
        window = self._windows.get(address)
        if window is not None and now - window.started >= self.window_s:
            del self._windows[address]
            return None
        return window

    def retry_after_s(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it may now."""
        with self._lock:
            now = self._clock()
            window = self._live(address, now)
            if window is None or window.failures < self.max_failures:
                return 0
            self.refused += 1
            return max(1, math.ceil(window.started + self.window_s - now))

    def failed(self, address: str) -> None:
        with self._lock:
            now = self._clock()
            window = self._live(address, now)
            if window is None:
                window = self._windows[address] = _Window(now, 0)
            window.failures += 1
            self._windows.move_to_end(address)
            while len(self._windows) > self.max_addresses:
                self._windows.popitem(last=False)
