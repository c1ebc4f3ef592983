"""Answers built with pandas' private constructors (query/answer.py) equal the answers of the
public ones, which are used when pandas (not pinned) drops or changes the private ones."""

from __future__ import annotations

import pandas as pd

import warehouse.query.answer as answer


def test_times_are_the_same_without_pandas_private_array_constructor(wh, monkeypatch):
    ts = pd.date_range("2026-11-25", periods=90, freq="1min", tz="UTC")
    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": ts, "value": range(90),
                                  "host": ["a", "b", "c"] * 30}), label_columns=["host"])
    calls = (lambda: wh.points("cpu", with_labels=False),
             lambda: wh.points("cpu", every="15m", agg="max"),
             lambda: wh.points("cpu", every="15m", agg="max", by=[], last=2),
             lambda: wh.frame(["cpu"], ts[0], ts[-1], every="15m", agg="max", by=["host"]),
             lambda: wh.frame(["cpu"], ts[0], ts[-1]))
    fast = [call() for call in calls]
    assert all(str(frame["ts"].dtype) == "datetime64[us, UTC]" for frame in fast)
    monkeypatch.setattr(answer, "DatetimeArray", None)  # as if pandas had no _simple_new
    for call, expected in zip(calls, fast):
        pd.testing.assert_frame_equal(call(), expected)
