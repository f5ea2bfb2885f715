"""Which failed inserts are the store's state (retry later, drop nothing) and which the data's.

Why: a block that fails because of what it holds is split to find the request (and the sample)
at fault, and only that is dropped; a block that fails because the store cannot take anything now
(unreachable, out of memory or disk, too many parts, read-only) must be kept whole and retried.
The network backend already raises ``StoreUnavailableError`` for those (``store.native``); chDB
raises ``RuntimeError`` with ClickHouse's ``Code: N.`` in the text, read here.
"""

from __future__ import annotations

import re

from store.backend import StoreUnavailableError

__all__ = ["TRANSIENT_CODES", "error_code", "is_transient"]

# ClickHouse error codes that say "not now" rather than "not this".
TRANSIENT_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        23,  # CANNOT_READ_FROM_ISTREAM
        24,  # CANNOT_WRITE_TO_OSTREAM
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        74,  # CANNOT_READ_FROM_FILE_DESCRIPTOR
        75,  # CANNOT_WRITE_TO_FILE_DESCRIPTOR
        76,  # CANNOT_OPEN_FILE
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)
_CODE = re.compile(r"\bCode:\s*(\d+)")
_TRANSIENT_TYPES = (StoreUnavailableError, ConnectionError, TimeoutError, OSError, MemoryError)


def error_code(err: BaseException) -> int | None:
    """The ClickHouse error code of an exception (the driver's ``code``, or ``Code: N`` in its text)."""
    code = getattr(err, "code", None)
    if isinstance(code, int):
        return code
    found = _CODE.search(str(err))
    return int(found.group(1)) if found else None


def is_transient(err: BaseException) -> bool:
    """True when the store could not take the insert now, whatever it held."""
    return isinstance(err, _TRANSIENT_TYPES) or error_code(err) in TRANSIENT_CODES
