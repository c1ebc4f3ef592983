"""The newest point per series of a batch, which moves series_last forward."""

import numpy as np
import pandas as pd

from warehouse.ingest.writer import _newest_per_series


def test_newest_point_of_each_series_whatever_the_input_order():
    ts = pd.to_datetime(["2026-01-01 00:00:03", "2026-01-01 00:00:01", "2026-01-01 00:00:09",
                         "2026-01-01 00:00:05", "2026-01-01 00:00:02"], utc=True)
    frame = pd.DataFrame({"ts": ts, "series_id": np.array([7, 3, 3, 7, 5], dtype="i4"),
                          "value": [1.0, 2.0, 3.0, 4.0, 5.0]})
    ts_us = frame["ts"].to_numpy(dtype="datetime64[us]").view("i8")

    newest = _newest_per_series(frame, ts_us)

    assert list(newest.columns) == ["series_id", "ts", "value"]
    by_series = {int(s): (t, v) for s, t, v in newest.itertuples(index=False, name=None)}
    assert by_series == {3: (ts[2], 3.0), 5: (ts[4], 5.0), 7: (ts[3], 4.0)}


def test_one_point_is_its_own_newest():
    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-01-01"], utc=True),
                          "series_id": np.array([1], dtype="i4"), "value": [0.5]})
    ts_us = frame["ts"].to_numpy(dtype="datetime64[us]").view("i8")
    newest = _newest_per_series(frame, ts_us)
    assert newest.to_dict("records") == [
        {"series_id": 1, "ts": pd.Timestamp("2026-01-01", tz="UTC"), "value": 0.5}]
