"""Page data remembered per change-feed version: a page asked for again before anything
was written (reloads, several viewers) is answered without its queries, and after a write
the live refresh of every open tab showing the same page (the same URL: the metrics
explorer's "points after the last one shown" included) costs one load, not one per tab.

An answer is reused while the server's change feed (``app.state.changes``: writes through
this server, and on PostgreSQL the writes of other processes it hears by ``LISTEN``) has
published nothing since it was computed, and for at most :data:`MAX_AGE_S` seconds: relative
windows ("last 7 days") slide with the clock, and a change the feed cannot hear (another
process writing a PostgreSQL database this server does not listen to) shows within that
time. The version is read before the loader runs, so a write that lands meanwhile makes
the next request load again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_AGE_S = 5.0
MAX_ENTRIES = 64  # distinct pages (URL states) remembered; the oldest go first


class PageMemo:
    """Loaded page data by key, valid for one version of ``feed``."""

    def __init__(self, feed, clock: Callable[[], float] = time.monotonic):
        self.feed = feed
        self._clock = clock
        self._entries: OrderedDict[tuple, tuple[int, float, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: tuple, load: Callable[[], dict]) -> dict:
        """The data remembered for ``key`` if still current, else ``load()`` (remembered)."""
        version, now = self.feed.version, self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] == version and now - entry[1] <= MAX_AGE_S:
            return entry[2]
        data = load()
        with self._lock:
            self._entries[key] = (version, now, data)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return data


def memo_of(app) -> PageMemo:
    """The app's :class:`PageMemo` over ``app.state.changes``, made on first use."""
    memo = getattr(app.state, "page_memo", None)
    if memo is None:
        memo = app.state.page_memo = PageMemo(app.state.changes)
    return memo
