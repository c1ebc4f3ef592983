"""Analytics panels computed once per version of their input data.

A forecast, trend, comparison or bottleneck analysis costs 0.3-2 s (model fits,
change-point searches, permutation tests) while reading its input costs milliseconds, and a
dashboard is rendered again on every refresh with mostly unchanged data. So the panel reads
its input through the public query API as before, and the analysis result is kept under
(what was asked, a digest of that input): the digest is the data version. New or changed
rows give another digest and the analysis runs again; the same rows always give the same
answer, so a cached result is never stale. The analyses are deterministic (the permutation
tests are seeded), which is what makes the result a function of the input.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import pandas as pd

#: Results kept (least recently used leave first): four built-ins with a few analytics
#: panels each, for a few recipes and ranges at a time. Each result is a small table.
MAX_ENTRIES = 64


def data_version(*frames: pd.DataFrame | None) -> str:
    """A digest of the frames' columns, types and values (row order included)."""
    digest = hashlib.blake2b(digest_size=16)
    for frame in frames:
        if frame is None:
            digest.update(b"\x00none")
            continue
        digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
        # Object columns (labels and params dicts, depends_on lists, UUIDs) are hashed as
        # their text: pandas hashes only hashable scalars.
        text = {c: frame[c].astype(str) for c in frame.columns if frame[c].dtype == object}
        hashed = pd.util.hash_pandas_object(frame.assign(**text) if text else frame,
                                            index=False)
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


class AnalysisCache:
    """A bounded, thread-safe map of (question, data version) -> result frame."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._results: OrderedDict[Hashable, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], pd.DataFrame]
                       ) -> pd.DataFrame:
        """The result stored under ``key``, else ``compute()`` stored under it. Callers get
        a copy: the panel code may change its frame."""
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                self.hits += 1
                return self._results[key].copy()
            self.misses += 1
        # Computed outside the lock: other panels' analyses run meanwhile. Two renders
        # missing the same key at once both compute it, and store equal results.
        result = compute()
        with self._lock:
            self._results[key] = result.copy()
            self._results.move_to_end(key)
            while len(self._results) > self.max_entries:
                self._results.popitem(last=False)
        return result

    def clear(self) -> None:
        with self._lock:
            self._results.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._results)


#: The process's cache: results depend only on the question and the data, not on which
#: warehouse they came from, so one cache serves every Warehouse in the process.
CACHE = AnalysisCache()

__all__ = ["CACHE", "MAX_ENTRIES", "AnalysisCache", "data_version"]
