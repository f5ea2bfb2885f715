"""What the PromQL engine needs from a store: select series by matchers within a time range."""

from __future__ import annotations

from typing import Protocol

from model.labels import Matcher
from model.series import Series


class Querier(Protocol):
    """Read side of a store. Implemented by ``store`` (ClickHouse) and by tests' in-memory stores."""

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        """Series matching all matchers, with their points in ``[start_ms, end_ms]`` (inclusive)."""
        ...

    def label_names(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        """Sorted label names of series matching all matchers (all series when ``matchers`` is empty)."""
        ...

    def label_values(self, name: str, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        """Sorted distinct values of label ``name`` among matching series."""
        ...
