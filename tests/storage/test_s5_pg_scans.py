"""wh.frame(where=...) on PostgreSQL probes the primary key once per hit for the readings of
every series of the hit's group (sql/postgresql/query/frame_where_probe.sql), pivoted by the
position of each series in its group's id array. The answers are the ones pandas computes
from the points written, on both engines: groups without a series of some metric (NaN
there), groups without the filtered metric (no hits), and a group holding two series of one
metric (a label named like the frame's ``ts`` column is not a key), where only the common
statement's max over both is right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.backends.postgresql import PostgreSQLBackend
from warehouse.query.frame_where import _per_group

METRICS = ["cpu.user", "cpu.system", "cpu.idle"]
SPAN = ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
#: host -> the metrics it has series of: d has no cpu.user (never a hit), e no cpu.system.
HOST_METRICS = {"a": METRICS, "b": METRICS, "d": ["cpu.system", "cpu.idle"],
                "e": ["cpu.user", "cpu.idle"]}


def readings() -> pd.DataFrame:
    rng = np.random.default_rng(15)
    ts = pd.date_range("2026-11-01", periods=144, freq="10min", tz="UTC")
    parts = [pd.DataFrame({"metric": metric, "ts": ts, "host": host,
                           "value": rng.uniform(0, 100, len(ts)).round(2)})
             for host, metrics in HOST_METRICS.items() for metric in metrics]
    return pd.concat(parts, ignore_index=True)


@pytest.mark.storage
def test_groups_missing_a_metric_answer_as_pandas(wh):
    points = readings()
    wh.write_points(points, label_columns=["host"])
    wide = points.pivot_table(index=["ts", "host"], columns="metric", values="value",
                              aggfunc="max").reindex(columns=METRICS).reset_index()
    wide.columns.name = None
    want = wide[wide["cpu.user"] > 70].sort_values(["host", "ts"]).reset_index(drop=True)
    got = wh.frame(METRICS, *SPAN, where="cpu.user > 70")
    assert set(got["host"]) == {"a", "b", "e"} and len(got) > 40
    assert got.loc[got["host"] == "e", "cpu.system"].isna().all()
    pd.testing.assert_frame_equal(got, want[["ts", "host", *METRICS]], check_dtype=False)


@pytest.mark.storage
def test_two_series_of_a_metric_in_one_group_give_their_max(wh):
    # "ts" is not a key of the frame (its own column has the name), so the two cpu.user
    # series of host a, told apart only by their label "ts", make one group; at t0 the
    # first is larger, at t1 the second: one series picked per group fails at one of them.
    t0, t1 = pd.Timestamp("2026-11-01T01:00:00Z"), pd.Timestamp("2026-11-01T02:00:00Z")
    rows = [("cpu.user", {"host": "a", "ts": "x"}, t0, 95.0),
            ("cpu.user", {"host": "a", "ts": "y"}, t0, 91.0),
            ("cpu.user", {"host": "a", "ts": "x"}, t1, 92.0),
            ("cpu.user", {"host": "a", "ts": "y"}, t1, 96.0),
            ("cpu.idle", {"host": "a"}, t0, 1.0),
            ("cpu.idle", {"host": "a"}, t1, 2.0)]
    wh.write_points(pd.DataFrame(rows, columns=["metric", "labels", "ts", "value"]))
    got = wh.frame(["cpu.user", "cpu.idle"], *SPAN, where="cpu.user > 90")
    assert got["ts"].tolist() == [t0, t1]
    assert got["cpu.user"].tolist() == [95.0, 96.0]
    assert got["cpu.idle"].tolist() == [1.0, 2.0]


def test_hit_groups_hold_each_groups_ids_by_metric_position():
    backend = PostgreSQLBackend.__new__(PostgreSQLBackend)  # only its SQL text is used
    ids = np.array([11, 12, 13, 21, 23])
    groups = np.array([0, 0, 0, 4, 4])
    metrics = np.array([0, 1, 2, 0, 2])
    placeholders = _per_group(backend, ids, groups, metrics, 0, 3)
    assert placeholders["hit_groups"] == ("(11, 0, ARRAY[11,12,13]::integer[]), "
                                          "(21, 4, ARRAY[21,NULL,23]::integer[])")
    assert placeholders["group_columns"].count("FILTER") == 3
    assert "h.h_ids[3]" in placeholders["group_columns"]
    # a group with two series of metric 0: no position holds both
    assert _per_group(backend, np.array([11, 12]), np.array([0, 0]), np.array([0, 0]), 0,
                      3) is None
