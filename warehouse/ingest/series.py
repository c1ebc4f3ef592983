"""Resolve (metric, labels) to series ids in bulk, creating missing series, with a cache."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

from warehouse.backends.base import Backend


class SeriesRegistry:
    """Maps (metric, canonical labels) to ``series_id``. Series are never deleted, so a
    cached id stays valid; the cache only ever holds ids of committed series."""

    def __init__(self, engine: Engine, backend: Backend):
        self.engine = engine
        self.backend = backend
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def resolve(self, conn: Connection, series: pd.DataFrame) -> tuple[np.ndarray, dict]:
        """Ids (int32) for each row of ``series`` (columns metric, labels_key), in order, and
        the newly learnt ids to pass to :meth:`remember` once ``conn`` has committed.

        Missing series are inserted on ``conn``, inside the caller's data transaction: a
        batch that fails leaves no series behind. Concurrent writers of the same new series
        wait on its unique key and then see the committed row."""
        keys = list(zip(series["metric"], series["labels_key"]))
        with self._lock:
            known = dict(self._ids)
        missing = [k for k in keys if k not in known]
        learnt: dict[tuple[str, str], int] = {}
        if missing:
            learnt = self._load(conn, {m for m, _ in missing})
            missing = [k for k in missing if k not in learnt]
        if missing:
            # One order for every writer, so two batches inserting the same new series
            # cannot wait on each other's keys in opposite orders (a deadlock).
            missing = sorted(set(missing))
            self.backend.insert_series(conn, pd.DataFrame(missing,
                                                          columns=["metric", "labels_key"]))
            learnt.update(self._load(conn, {m for m, _ in missing}))
        known.update(learnt)
        return np.array([known[k] for k in keys], dtype="i4"), learnt

    def remember(self, learnt: dict) -> None:
        """Cache ids learnt by :meth:`resolve` (call after its transaction committed)."""
        with self._lock:
            self._ids.update(learnt)

    @staticmethod
    def _load(conn: Connection, metrics: set[str]) -> dict[tuple[str, str], int]:
        query = text("SELECT series_id, metric, labels_key FROM series WHERE metric IN :metrics")
        query = query.bindparams(bindparam("metrics", expanding=True))
        return {(metric, labels_key): int(series_id) for series_id, metric, labels_key
                in conn.execute(query, {"metrics": sorted(metrics)})}

    def forget(self) -> None:
        """Drop the cache (after a downgrade or anything else that deletes series)."""
        with self._lock:
            self._ids.clear()
