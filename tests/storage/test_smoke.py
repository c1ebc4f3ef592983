from __future__ import annotations

import numpy as np
import pandas as pd


def test_write_and_read_back(wh):
    df = pd.DataFrame({
        "metric": "cpu",
        "labels": [{"host": "a"}] * 5 + [{"host": "b"}] * 5,
        "ts": pd.date_range("2026-11-25", periods=10, freq="1min", tz="UTC"),
        "value": np.arange(10, dtype=float),
    })
    assert wh.write_points(df).written == 10
    assert wh.write_points(df).written == 0
    out = wh.points("cpu")
    assert len(out) == 10
    assert out["value"].tolist() == list(np.arange(10.0))
