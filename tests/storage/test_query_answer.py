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


def test_empty_answers_keep_microsecond_times(wh):
    """An answer with no rows has the ts type of one with rows, whichever path it took:
    pandas infers seconds for an empty list (PostgreSQL's points path did, its compressed
    segments µs)."""
    ts = pd.date_range("2026-11-25", periods=30, freq="1min", tz="UTC")
    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": ts, "value": range(30),
                                  "host": "a"}), label_columns=["host"])
    empty = [wh.points("cpu", "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"),
             wh.frame(["cpu"], ts[0], ts[-1], where="cpu > 1000"),
             wh.frame(["cpu"], "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")]
    assert all(frame.empty for frame in empty)
    assert [str(frame["ts"].dtype) for frame in empty] == ["datetime64[us, UTC]"] * 3
