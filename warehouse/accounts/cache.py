"""A short-lived, in-process memory of credential lookups, found and not found.

Looking a token or session up costs a query per API call (~0.5-4 ms on DuckDB, whose planner
is the expensive part for so small a read) and, in a server, a round trip into the
threadpool; the server's query-overhead budget is 5 ms. A row found is remembered for
:data:`TTL` seconds, so a known credential is checked from memory, on the server's event
loop. Whatever ends a credential in this process (revoke, logout, password change, user
removed) clears the memory at once, so through the server revocation is immediate; a change
made by another process directly in a shared PostgreSQL database takes effect within
:data:`TTL`. Expiry is checked on every use against the remembered row, so it is exact.

A digest that matched nothing is remembered too, for :data:`UNKNOWN_TTL` seconds: a client
repeating a wrong or stale token (or an attacker replaying one) costs no query. This cannot
hide a credential made meanwhile: a new token or session is 256 random bits that nobody could
have presented before it existed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

TTL = 5.0
UNKNOWN_TTL = 5.0
MAX_ENTRIES = 10_000

_Key = tuple[str, str, str]
_rows: OrderedDict[_Key, tuple[float, dict]] = OrderedDict()
_unknown: OrderedDict[_Key, float] = OrderedDict()
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
        _remember(_rows, (database, kind, digest), (time.monotonic(), row))


def known_unknown(database: str, kind: str, digest: str) -> bool:
    """Whether this digest matched nothing less than UNKNOWN_TTL ago."""
    key = (database, kind, digest)
    with _lock:
        asked = _unknown.get(key)
        if asked is None:
            return False
        if time.monotonic() - asked > UNKNOWN_TTL:
            del _unknown[key]
            return False
        return True


def put_unknown(database: str, kind: str, digest: str) -> None:
    """Remember that a digest matched nothing (bounded as :func:`put`: random guesses cannot
    grow it)."""
    with _lock:
        _remember(_unknown, (database, kind, digest), time.monotonic())


def _remember(table: OrderedDict, key: _Key, value) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_ENTRIES:
        table.popitem(last=False)


def forget_all() -> None:
    """Forget every remembered row (a credential ended or changed in this process)."""
    with _lock:
        _rows.clear()
        _unknown.clear()
