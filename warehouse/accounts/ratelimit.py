"""Rate limiting of failed logins (per user name and per client address) and of failed
credentials (per client address), in bounded memory.

A key (user name or address) that failed ``limit`` times within ``window`` seconds is refused
until its oldest failure leaves the window; refused attempts are not checked at all, so a
flood costs no password hashing. Each table keeps at most ``max_keys`` keys, dropping the
least recently failed: memory stays bounded whatever an attacker sends. In memory only: a
restart forgets (acceptable: the window is minutes long), and several server processes
would each count their own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class _Window:
    def __init__(self, limit: int, window: float, max_keys: int):
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        times = self.failures.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self.failures[key]
            return 0.0
        return times[0] + self.window - now if len(times) >= self.limit else 0.0

    def fail(self, key: str, now: float) -> None:
        times = self.failures.pop(key, None) or deque(maxlen=self.limit)
        times.append(now)
        self.failures[key] = times  # most recent last
        while len(self.failures) > self.max_keys:
            self.failures.popitem(last=False)


class LoginLimiter:
    """Counts failed logins; :meth:`retry_after` says how long a caller must wait."""

    def __init__(self, per_user: int = 5, per_address: int = 20, window: float = 900.0,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._users = _Window(per_user, window, max_keys)
        self._addresses = _Window(per_address, window, max_keys)
        self._clock = clock
        self._lock = threading.Lock()

    def retry_after(self, user: str, address: str | None) -> int | None:
        """Seconds to wait (rounded up) if either the user or the address is over its limit."""
        with self._lock:
            now = self._clock()
            wait = max(self._users.wait(_user_key(user), now),
                       self._addresses.wait(address or "?", now))
        return math.ceil(wait) or 1 if wait > 0 else None

    def failed(self, user: str, address: str | None) -> None:
        """Count one failed login of ``user`` from ``address``."""
        with self._lock:
            now = self._clock()
            self._users.fail(_user_key(user), now)
            self._addresses.fail(address or "?", now)

    def succeeded(self, user: str) -> None:
        """A correct password clears the user's failures (not the address's)."""
        with self._lock:
            self._users.failures.pop(_user_key(user), None)

    def __len__(self) -> int:
        return len(self._users.failures) + len(self._addresses.failures)


class FailureLimiter:
    """Counts failed credentials (bad or stale tokens and session cookies) per client
    address: an address over ``limit`` failures within ``window`` seconds is refused (429)
    before its credential is looked up, so guessing tokens costs the server no query."""

    def __init__(self, limit: int = 60, window: float = 60.0, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self._addresses = _Window(limit, window, max_keys)
        self._clock = clock
        self._lock = threading.Lock()

    def retry_after(self, address: str | None) -> int | None:
        """Seconds to wait (rounded up) if ``address`` is over its limit, else None."""
        with self._lock:
            wait = self._addresses.wait(address or "?", self._clock())
        return math.ceil(wait) or 1 if wait > 0 else None

    def failed(self, address: str | None) -> None:
        """Count one failed credential from ``address``."""
        with self._lock:
            self._addresses.fail(address or "?", self._clock())

    def __len__(self) -> int:
        return len(self._addresses.failures)


def _user_key(user: str) -> str:
    return str(user)[:64].lower()
