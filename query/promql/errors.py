"""The one error the PromQL engine raises, carrying Prometheus' HTTP API ``errorType``."""

from __future__ import annotations

ERROR_TYPES = frozenset({"bad_data", "execution", "timeout", "canceled", "internal"})


class PromQLError(Exception):
    """A query failed; ``error_type`` is what Prometheus puts in the API's ``errorType``.

    >>> PromQLError("bad_data", "parse error: unexpected end of input").error_type
    'bad_data'
    """

    def __init__(self, error_type: str, message: str) -> None:
        if error_type not in ERROR_TYPES:
            raise ValueError(f"unknown PromQL error type {error_type!r}")
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    def __repr__(self) -> str:
        return f"PromQLError({self.error_type!r}, {self.message!r})"
