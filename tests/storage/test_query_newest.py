"""Newest-first plans (``last=N``) answer like the full computation's tail, on both engines,
also across gaps wider than the first window, and after rollups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

T0 = pd.Timestamp("2026-11-01T00:00Z")


def gappy(wh) -> None:
    """Two hosts: one point a minute for 2 days, then nothing for 3 days, then 30 minutes
    more for host a only."""
    rng = np.random.default_rng(2)
    first = pd.date_range(T0, periods=2 * 1440, freq="1min")
    later = pd.date_range(T0 + pd.Timedelta("5D"), periods=30, freq="1min")
    frames = []
    for host, ticks in (("a", first.append(later)), ("b", first)):
        frames.append(pd.DataFrame({"metric": "load", "ts": ticks, "host": host,
                                    "value": rng.normal(10, 3, len(ticks))}))
    wh.write_points(pd.concat(frames, ignore_index=True), label_columns=["host"])


def tail_buckets(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    newest = sorted(frame["ts"].unique())[-n:]
    return frame[frame["ts"].isin(newest)].reset_index(drop=True)


@pytest.mark.parametrize("end, n", [
    (None, 5),                                   # newest data: first window suffices
    (pd.Timestamp("2026-11-05T12:00Z"), 4),      # inside the 3-day gap: windows widen
    (pd.Timestamp("2026-11-06T00:10Z"), 40),     # needs buckets on both sides of the gap
    (pd.Timestamp("2026-11-01T00:03Z"), 10),     # fewer than N exist: all of them
])
@pytest.mark.parametrize("by", [[], None])
def test_last_buckets_equal_the_full_tail(wh, end, n, by):
    gappy(wh)
    kwargs = dict(every="1h", agg="max", by=by, rollups=False)
    full = wh.points("load", None, end, **kwargs)
    got = wh.points("load", None, end, last=n, **kwargs)
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, tail_buckets(full, n))


def test_last_buckets_with_a_start_and_from_rollups(wh):
    gappy(wh)
    wh.refresh_rollups(now=T0 + pd.Timedelta("10D"))
    end = pd.Timestamp("2026-11-05T00:00Z")
    full = wh.points("load", T0 + pd.Timedelta("1D"), end, every="1h", agg="mean", by=["host"])
    got = wh.points("load", T0 + pd.Timedelta("1D"), end, every="1h", agg="mean",
                    by=["host"], last=3)
    pd.testing.assert_frame_equal(got, tail_buckets(full, 3))
    assert len(got) == 6  # both hosts, 3 buckets
    short = wh.points("load", end - pd.Timedelta("4h"), end, every="1h", agg="mean", last=3)
    assert short.empty  # nothing in [start, end): no search beyond start


def test_last_with_fill_is_the_n_buckets_before_end(wh):
    gappy(wh)
    end = pd.Timestamp("2026-11-03T02:00Z")
    got = wh.points("load", None, end, every="1h", agg="count", by=[], last=4, fill="zero")
    assert got["ts"].tolist() == list(pd.date_range("2026-11-02T22:00Z", periods=4, freq="1h"))
    assert got["value"].tolist() == [120.0, 120.0, 0.0, 0.0]  # two hosts


@pytest.mark.parametrize("end", [None, pd.Timestamp("2026-11-04T00:00Z")])
def test_newest_points_per_series(wh, end):
    gappy(wh)
    full = wh.points("load", None, end)
    got = wh.points("load", None, end, last=3)
    want = full.groupby("series_id", sort=False).tail(3).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert len(got) == 6
    latest = wh.points("load", last=1, with_labels=["host"])
    assert latest.set_index("host")["ts"].to_dict() == {
        "a": T0 + pd.Timedelta("5D") + pd.Timedelta("29min"),
        "b": T0 + pd.Timedelta("2D") - pd.Timedelta("1min")}


@pytest.mark.parametrize("last", [0, -1, 2.5, True, "3"])
def test_bad_last_is_refused(wh, last):
    gappy(wh)
    with pytest.raises(ValueError, match="last must be a positive whole number"):
        wh.points("load", every="1h", last=last)
