"""PostgreSQL's pivoted copy of compressed chunks (migration 0017, jobs/readings.py): one row
per label set and segment of instants, an array per metric. The job copies every value of
an encoded chunk, and anything that changes a copied range (a write, drop_chunks,
retention) deletes its copy in the same transaction. Frames answering from it are checked
with DuckDB's in test_readings_copy.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from test_readings_copy import (
    END,
    NOW,
    START,
    assert_same,
    compress_all,
    copied,
    data,
    db,
    questions,
)
from test_review_s5_copy import DAY1, DAY2, HOSTILE, hourly
from test_review_s5_copy import METRICS as HOSTILE_METRICS
from test_review_s5_copy import frame as review_frame

from warehouse import jobs
from warehouse.jobs import compress
from warehouse.query import frame_readings


@pytest.fixture
def pg(wh):
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB's copy is a row per instant (test_readings_copy.py)")
    return wh


def compressed(wh) -> None:
    results = compress_all(wh)
    assert [r.refused for r in results] == [None, None, None]


def copy_of(wh, day: str) -> pd.DataFrame:
    """The copy's rows of one day decoded: (ts, labels_key, metric, value) per value."""
    start = pd.Timestamp(day, tz="UTC")
    columns = dict(db(wh, "SELECT col, metric FROM reading_columns"))
    entities = dict(db(wh, "SELECT entity, labels_key FROM reading_entities"))
    with wh.engine.connect() as conn:
        rows = pd.read_sql_query(
            text("SELECT * FROM readings WHERE ts_min >= :a AND ts_min < :b"), conn,
            params={"a": start, "b": start + pd.Timedelta(days=1)})
    out = []
    for row in rows.itertuples(index=False):
        row = row._asdict()
        offsets = (np.arange(row["n"]) * row["ts_step"] if row["ts_offsets"] is None
                   else np.asarray(row["ts_offsets"]))
        ts = pd.Timestamp(row["ts_min"]) + pd.to_timedelta(offsets, unit="us")
        for col, metric in columns.items():
            values = row.get(f"m{col}")
            if values is None:
                continue
            assert len(values) == row["n"]
            keep = [v is not None for v in values]
            out.append(pd.DataFrame({"ts": ts[keep], "labels_key": entities[row["entity"]],
                                     "metric": metric,
                                     "value": [v for v in values if v is not None]}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["ts", "labels_key", "metric", "value"])


def expected(day: str) -> pd.DataFrame:
    frame = data()
    start = pd.Timestamp(day, tz="UTC")
    frame = frame[(frame["ts"] >= start) & (frame["ts"] < start + pd.Timedelta(days=1))]
    keys = frame["labels"].map(lambda d: str(sorted(d.items())))
    return frame.assign(labels_key=keys)[["ts", "labels_key", "metric", "value"]]


def same_values(got: pd.DataFrame, want: pd.DataFrame) -> None:
    # labels_key is the database's text; compare through the set of label sets instead
    assert got["labels_key"].nunique() == want["labels_key"].nunique()
    key = ["metric", "ts", "value"]
    got = got[key].sort_values(key).reset_index(drop=True)
    want = want[key].sort_values(key).reset_index(drop=True)
    got["ts"] = pd.to_datetime(got["ts"], utc=True).astype("datetime64[us, UTC]")
    want["ts"] = want["ts"].astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_the_job_copies_every_value_of_each_encoded_day(pg):
    pg.write_points(data())
    compressed(pg)
    assert copied(pg) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    for day in copied(pg):
        same_values(copy_of(pg, day), expected(day))
    # hosts a-c write at their own second: every segment is regular
    [(irregular,)] = db(pg, "SELECT count(*) FROM readings WHERE ts_step IS NULL")
    assert irregular == 0
    assert compress.compress_now(pg, "1d", now=NOW) == []  # nothing left to do


def test_irregular_instants_keep_their_offsets(pg):
    frame = data()
    frame = frame[frame["metric"] == "cpu"].iloc[::3].copy()
    frame["ts"] += pd.to_timedelta(np.arange(len(frame)) % 7, unit="s")
    pg.write_points(frame)
    compressed(pg)
    [(irregular,)] = db(pg, "SELECT count(*) FROM readings WHERE ts_step IS NULL")
    assert irregular > 0
    got = copy_of(pg, "2026-11-02")
    day = frame[(frame["ts"] >= "2026-11-02") & (frame["ts"] < "2026-11-03")]
    assert sorted(pd.to_datetime(got["ts"], utc=True)) == sorted(day["ts"])


def test_a_write_into_a_copied_day_deletes_its_copy_until_the_next_run(pg):
    pg.write_points(data())
    compressed(pg)
    # a new label set: no segment of it to decode, the copy must go all the same
    late = pd.DataFrame({"metric": ["cpu"], "labels": [{"host": "z"}],
                         "ts": [pd.Timestamp("2026-11-02T05:00:30Z")], "value": [7.0]})
    pg.write_points(late)
    assert copied(pg) == ["2026-11-01", "2026-11-03"]
    [(rows,)] = db(pg, "SELECT count(*) FROM readings WHERE ts_min >= '2026-11-02' "
                       "AND ts_min < '2026-11-03'")
    assert rows == 0
    pg.refresh_rollups(now=NOW)
    again = [r.chunk_name for r in compress.compress_now(pg, "1d", now=NOW)]
    assert again == ["points_20261102_000000"]
    assert copied(pg) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    got = copy_of(pg, "2026-11-02")
    assert len(got) == len(expected("2026-11-02")) + 1 and 7.0 in got["value"].tolist()


def test_retention_and_drop_chunks_take_the_copy_with_them(pg):
    pg.write_points(data())
    compressed(pg)
    pg.drop_chunks("points", "2026-11-02T00:00:00Z", force=True)
    assert copied(pg) == ["2026-11-02", "2026-11-03"] and copy_of(pg, "2026-11-01").empty
    pg.set_retention("points", "9d")  # 11-02 ends by NOW - 9d, 11-03 does not
    result = jobs.run_job(pg, "retention", now=NOW, retries=0)
    assert result.status == "succeeded", result.error
    assert copied(pg) == ["2026-11-03"] and copy_of(pg, "2026-11-02").empty
    assert not copy_of(pg, "2026-11-03").empty


def test_frames_answer_from_the_copy_as_from_points(pg, copies_used):
    """Irregular instants (host c's mem jittered, so its rows hold instants where one metric
    has no value), a NaN written by SQL (NaN passes '> 52' in PostgreSQL, both ways) and a
    label set with one metric only (host d)."""
    frame = data()
    jitter = (frame["metric"] == "mem") & (frame["labels"].map(lambda d: d["host"]) == "c")
    frame.loc[jitter, "ts"] += pd.to_timedelta(np.arange(int(jitter.sum())) % 5, unit="s")
    pg.write_points(frame)
    with pg.engine.begin() as conn:
        conn.execute(text(
            "UPDATE points SET value = 'NaN' WHERE ts = '2026-11-02T06:00:01Z' AND series_id IN "
            "(SELECT series_id FROM series WHERE metric = 'cpu' AND labels->>'host' = 'b')"))
    before = questions(pg)
    compressed(pg)
    [(irregular,)] = db(pg, "SELECT count(*) FROM readings WHERE ts_step IS NULL")
    assert irregular > 0
    pg.frame(["cpu", "mem"], "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")  # reads what the copy holds
    copies_used.clear()
    after = questions(pg)
    assert_same(before, after)
    assert sum(copies_used) == 7
    nan = after["where"][after["where"]["cpu"].isna()]
    assert len(nan) == 1 and str(nan["ts"].iloc[0]) == "2026-11-02 06:00:01+00:00"


def aligned_data() -> pd.DataFrame:
    """Label sets whose metrics are written at the same instants (their segments line up,
    the copy takes the segments' values as they are): host e every 10 min with values of
    each stored form (integers, two decimals, float8), host f at irregular instants."""
    rng = np.random.default_rng(5)
    regular = pd.date_range("2026-11-01", periods=3 * 144, freq="10min", tz="UTC")
    irregular = pd.DatetimeIndex(np.sort(rng.choice(
        pd.date_range("2026-11-01", periods=3 * 86_400 // 7, freq="7s", tz="UTC"), 1500,
        replace=False)))
    values = {"int": lambda n: rng.integers(0, 100, n).astype(float),
              "dec": lambda n: np.round(rng.random(n) * 100, 2),
              "f8": lambda n: rng.random(n) * 1e-3 + np.pi}
    parts = [pd.DataFrame({"metric": metric, "labels": [{"host": host}] * len(ts), "ts": ts,
                           "value": make(len(ts))})
             for host, ts in (("e", regular), ("f", irregular))
             for metric, make in values.items()]
    return pd.concat(parts, ignore_index=True)


def test_lined_up_segments_are_copied_as_they_are(pg, copies_used):
    frame = aligned_data()
    pg.write_points(frame)
    before = {
        "all": pg.frame(["int", "dec", "f8"], "2026-11-01T02:00:00Z", "2026-11-03T22:00:00Z"),
        "where": pg.frame(["int", "dec", "f8"], "2026-11-01T02:00:00Z", "2026-11-03T22:00:00Z",
                          where="dec >= 50.5"),
    }
    compressed(pg)
    forms = dict(db(pg, "SELECT coalesce(vals_decimals, -1), count(*) FROM points_compressed "
                        "GROUP BY 1"))
    assert forms.get(0) and forms.get(2) and forms.get(-1)  # every value form is there
    [(irregular,)] = db(pg, "SELECT count(*) FROM readings WHERE ts_step IS NULL")
    assert irregular > 0
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        got = copy_of(pg, day)
        start = pd.Timestamp(day, tz="UTC")
        want = frame[(frame["ts"] >= start) & (frame["ts"] < start + pd.Timedelta(days=1))]
        same_values(got, want.assign(labels_key=want["labels"].map(str)))
    pg.frame(["int", "dec"], "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")  # reads what the copy holds
    copies_used.clear()
    after = {
        "all": pg.frame(["int", "dec", "f8"], "2026-11-01T02:00:00Z", "2026-11-03T22:00:00Z"),
        "where": pg.frame(["int", "dec", "f8"], "2026-11-01T02:00:00Z", "2026-11-03T22:00:00Z",
                          where="dec >= 50.5"),
    }
    assert copies_used == [True, True]
    assert_same(before, after)


def test_review_cases_on_postgresql(pg, copies_used):
    """DuckDB's review cases (test_review_s5_copy.py) on PostgreSQL's copy: label sets that
    share a frame row key (a label named like a metric) answer one row per instant from
    points; hostile metric names and label values stay data."""
    sharing = pd.concat([hourly(["cpu", "mem"], {"host": "a", "mem": "x"}),
                         hourly(["cpu", "mem"], {"host": "a", "mem": "y"}, offset=10)])
    hostile = pd.concat([hourly(HOSTILE_METRICS, {"host": value}) for value in HOSTILE])
    pg.write_points(pd.concat([sharing, hostile]))
    expected = {"sharing": review_frame(pg, ["cpu", "mem"], DAY1, DAY2, copies=False),
                "hostile": review_frame(pg, HOSTILE_METRICS, DAY1, DAY2, copies=False,
                                        where="m2 > 3")}
    assert len(expected["sharing"]) == 24 and len(expected["hostile"]) > 0
    pg.refresh_rollups(now=NOW)
    assert [r.refused for r in compress.compress_now(pg, "1d", now=NOW)] == [None, None]
    review_frame(pg, ["cpu", "mem"], DAY1, DAY2, copies=True)  # reads what the copy holds
    copies_used.clear()
    for where in (None, "cpu >= 0"):
        pd.testing.assert_frame_equal(review_frame(pg, ["cpu", "mem"], DAY1, DAY2,
                                                   copies=True, where=where),
                                      expected["sharing"])
    assert copies_used == [False, False]  # two label sets would share one row
    answer = review_frame(pg, HOSTILE_METRICS, DAY1, DAY2, copies=True, where="m2 > 3")
    assert copies_used[-1] is True
    pd.testing.assert_frame_equal(answer, expected["hostile"])


def test_a_copy_gone_behind_the_remembered_list_is_noticed(pg, copies_used):
    """Another process's write deletes a copy (here: its statement, run directly) while this
    process remembers the list: the frame's statement finds one copy missing in its own
    snapshot, the frame reads points, and the list is dropped."""
    pg.write_points(data())
    compressed(pg)
    for where in ("cpu > 52", "cpu > 1e9"):  # hits, and none (the guard row still comes)
        expected = pg.frame(["cpu", "mem"], START, END, where=where)  # list remembered
        assert frame_readings._KEY_POSTGRESQL in pg.backend.schema_facts
        with pg.engine.begin() as conn:  # what a write into day 2 does in its transaction
            conn.execute(text("SELECT wh_forget_readings('2026-11-02T05:00:00Z', "
                              "'2026-11-02T05:00:00Z')"))
        copies_used.clear()
        answer = pg.frame(["cpu", "mem"], START, END, where=where)
        assert copies_used[0] is True  # planned from the remembered list
        assert frame_readings._KEY_POSTGRESQL not in pg.backend.schema_facts
        assert_same({"a": expected}, {"a": answer})
        assert [r.refused for r in compress_all(pg)] == [None]  # copies day 2 again
