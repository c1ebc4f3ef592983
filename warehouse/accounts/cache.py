"""A short-lived, in-process memory of credential lookups.

Looking a token or session up costs a query per API call (~0.5-4 ms on DuckDB, whose planner
is the expensive part for so small a read); the server's query-overhead budget is 5 ms. A
row found is remembered for :data:`TTL` seconds. Whatever ends a credential in this process
(revoke, logout, password change, user removed) clears the memory at once, so through the
server revocation is immediate; a change made by another process directly in a shared
PostgreSQL database takes effect within :data:`TTL`. Expiry is checked on every use against
the remembered row, so it is exact. Unknown credentials are never remembered.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

TTL = 5.0
MAX_ENTRIES = 10_000

_rows: OrderedDict[tuple[str, str, str], tuple[float, dict]] = OrderedDict()
_lock = threading.Lock()


def get(database: str, kind: str, digest: str) -> dict | None:
    """The remembered row for a credential digest, if fetched less than TTL ago."""
    key = (database, kind, digest)
    with _lock:
        entry = _rows.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > TTL:
            del _rows[key]
            return None
        return entry[1]


def put(database: str, kind: str, digest: str, row: dict) -> None:
    """Remember a row found (the oldest entries go beyond MAX_ENTRIES)."""
    with _lock:
        _rows[(database, kind, digest)] = (time.monotonic(), row)
        _rows.move_to_end((database, kind, digest))
        while len(_rows) > MAX_ENTRIES:
            _rows.popitem(last=False)


def forget_all() -> None:
    """Forget every remembered row (a credential ended or changed in this process)."""
    with _lock:
        _rows.clear()
