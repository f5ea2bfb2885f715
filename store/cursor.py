"""Page cursors for newest-first listings: the (time, tie-breaker) of the last row of a page.

Opaque to clients (URL-safe base64 of a JSON pair), stable under concurrent appends: the next
page continues strictly after the row the cursor names.
"""

from __future__ import annotations

import base64
import json


def encode_cursor(time_ms: int, tie: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([time_ms, tie]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Raises ValueError (named for the ``next`` parameter) for anything this API did not return."""
    try:
        time_ms, tie = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return int(time_ms), int(tie)
    except (ValueError, TypeError) as err:
        raise ValueError(f"next: not a cursor this API returned ({err})") from None
