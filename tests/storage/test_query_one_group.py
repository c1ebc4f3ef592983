"""``wh.points(by=...)`` when every chosen series falls in one group (``by=[]``, or a label
they all share): aggregated over all their points in one GROUP BY, without the join that
maps series to groups (warehouse/query/points.py). Same answers as pandas over the raw
points, for every aggregate, with and without ``last=``, before and after rollups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

AGGREGATES = ["mean", "min", "max", "sum", "count", "first", "last", "p50", "p95", "p99"]
_PANDAS = {"mean": "mean", "min": "min", "max": "max", "sum": "sum", "count": "count",
           "first": "first", "last": "last", "p50": lambda s: s.quantile(0.5),
           "p95": lambda s: s.quantile(0.95), "p99": lambda s: s.quantile(0.99)}


def _points(n: int = 900, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hosts = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    return pd.DataFrame({
        "metric": "cpu", "host": hosts, "dc": "east",
        # Random instants, several per minute and host, none repeated for a host.
        "ts": pd.Timestamp("2026-11-25T00:00Z")
        + pd.to_timedelta(rng.choice(3 * 3600, n, replace=False), unit="s"),
        "value": rng.normal(50, 10, n).round(3),
    })


def _expected(points: pd.DataFrame, every: str, agg: str) -> pd.Series:
    bucket = points["ts"].dt.floor(every)
    ordered = points.assign(bucket=bucket).sort_values("ts")
    return ordered.groupby("bucket")["value"].agg(_PANDAS[agg]).astype(float)


@pytest.mark.parametrize("agg", AGGREGATES)
def test_one_group_equals_pandas_over_all_its_points(wh, agg):
    points = _points()
    wh.write_points(points, label_columns=["host", "dc"])
    expected = _expected(points, "15min", agg)
    for by in ([], ["dc"]):  # no label, and a label every series has the same value of
        got = wh.points("cpu", every="15m", agg=agg, by=by)
        assert list(got.columns) == ["ts", *by, "value"]
        pd.testing.assert_series_equal(got.set_index("ts")["value"], expected,
                                       check_names=False, check_index_type=False,
                                       check_freq=False, rtol=1e-9)
    end = pd.Timestamp("2026-11-25T02:10Z")  # inside a bucket: it holds what is before end
    newest = wh.points("cpu", None, end, every="15m", agg=agg, by=[], last=3)
    window = _expected(points[points["ts"] < end], "15min", agg).tail(3)
    np.testing.assert_allclose(newest["value"], window.to_numpy(), rtol=1e-9)
    assert newest["ts"].tolist() == window.index.tolist()


def test_one_group_with_rollups_equals_raw(wh):
    points = _points()
    wh.write_points(points, label_columns=["host", "dc"])
    wh.refresh_rollups(now=pd.Timestamp("2026-11-26T00:00Z"))
    for agg in ("mean", "max", "count", "sum"):
        with_rollups = wh.points("cpu", every="1h", agg=agg, by=[])
        raw = wh.points("cpu", every="1h", agg=agg, by=[], rollups=False)
        pd.testing.assert_frame_equal(with_rollups, raw, rtol=1e-9)
        pd.testing.assert_series_equal(raw.set_index("ts")["value"],
                                       _expected(points, "1h", agg), check_names=False,
                                       check_index_type=False, check_freq=False, rtol=1e-9)


def test_the_newest_points_of_each_series(wh):
    points = _points()
    wh.write_points(points, label_columns=["host", "dc"])
    got = wh.points("cpu", None, "2026-11-25T02:00Z", last=4, with_labels=["host"])
    before = points[points["ts"] < pd.Timestamp("2026-11-25T02:00Z")]
    want = before.sort_values("ts").groupby("host").tail(4).sort_values(["host", "ts"])
    assert got["host"].tolist() == want["host"].tolist()
    assert got["ts"].tolist() == want["ts"].tolist()
    np.testing.assert_allclose(got["value"], want["value"])
