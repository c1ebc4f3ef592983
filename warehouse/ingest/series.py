"""Resolve (metric, labels) to series ids in bulk, creating missing series, with a cache."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
from sqlalchemy import Engine, bindparam, text

from warehouse.backends.base import Backend


class SeriesRegistry:
    """Maps (metric, canonical labels) to ``series_id``. Series are never deleted, so a
    cached id stays valid; the cache only ever grows by what this process has seen."""

    def __init__(self, engine: Engine, backend: Backend):
        self.engine = engine
        self.backend = backend
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def resolve(self, series: pd.DataFrame) -> np.ndarray:
        """Ids (int32) for each row of ``series`` (columns metric, labels_key), in order."""
        keys = list(zip(series["metric"], series["labels_key"]))
        with self._lock:
            missing = [k for k in keys if k not in self._ids]
            if missing:
                self._load({m for m, _ in missing})
                missing = [k for k in missing if k not in self._ids]
            if missing:
                # Its own committed transaction: concurrent writers then see the new series,
                # and a rejected points batch leaves at most an empty series behind.
                with self.engine.begin() as conn:
                    self.backend.insert_series(
                        conn, pd.DataFrame(missing, columns=["metric", "labels_key"]))
                self._load({m for m, _ in missing})
            return np.array([self._ids[k] for k in keys], dtype="i4")

    def _load(self, metrics: set[str]) -> None:
        query = text("SELECT series_id, metric, labels_key FROM series WHERE metric IN :metrics")
        query = query.bindparams(bindparam("metrics", expanding=True))
        with self.engine.connect() as conn:
            for series_id, metric, labels_key in conn.execute(query, {"metrics": sorted(metrics)}):
                self._ids[(metric, labels_key)] = int(series_id)

    def forget(self) -> None:
        """Drop the cache (after a downgrade or anything else that deletes series)."""
        with self._lock:
            self._ids.clear()
