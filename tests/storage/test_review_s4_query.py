"""Review (session 4): query answers that must not depend on the engine nor on whether a
PostgreSQL call sent its state with its statement (one simple-protocol message, parameters
rendered as text) or read it first (server-side binds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2026-11-02T00:00:00Z")


def test_bounds_with_nanoseconds_give_the_same_rows_every_call(wh):
    """Points are µs; bounds with ns keep ``ts >= start`` and ``ts < end`` exactly. The first
    PostgreSQL call (binds) and DuckDB truncated them to [0, 1, 2]; a repeat call (literal
    text, rounded by the server) answered [1, 2, 3]."""
    ts = pd.date_range(T0, periods=5, freq="1us", unit="us")
    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": ts, "host": "a",
                                  "value": np.arange(5.0)}), label_columns=["host"])
    start, end = T0 + pd.Timedelta(nanoseconds=900), T0 + pd.Timedelta(nanoseconds=3900)
    for _ in range(3):  # the first call reads its state, the next ones assume it
        assert wh.points("cpu", start, end, with_labels=False)["value"].tolist() == [1, 2, 3]
        assert wh.frame(["cpu"], start, end)["cpu"].tolist() == [1, 2, 3]
    low, high = T0 + pd.Timedelta(nanoseconds=400), T0 + pd.Timedelta(nanoseconds=2400)
    for _ in range(2):
        assert wh.points("cpu", low, high, with_labels=False)["value"].tolist() == [1, 2]
