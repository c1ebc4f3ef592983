"""The fast paths of bulk ingest (issue 15) give the same answers as the careful ones, on
DuckDB and PostgreSQL: labels as categorical columns, a batch of new data (PostgreSQL copies
it straight into its chunk), a batch that meets stored keys (de-duplicated, stored values
never overwritten) even when series_last does not know them, a batch spanning chunks, and
repeated or unordered keys inside a batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from tests.conftest import run_at_once
from warehouse import ValidationError
from warehouse.backends import postgresql_write
from warehouse.ingest.points import prepare_points

T0 = pd.Timestamp("2026-11-02T00:00:00Z")


@pytest.fixture(autouse=True, params=["new_chunk", "bulk", "small"])
def batch_size_path(request, monkeypatch):
    """PostgreSQL takes its bulk path (series_last probe, COPY into the chunk) from
    BULK_ROWS rows, and loads a batch's one new chunk itself (plain table, index, ATTACH)
    from NEW_CHUNK_ROWS; these batches are small, so run each test on every path."""
    if request.param in ("new_chunk", "bulk"):
        monkeypatch.setattr(postgresql_write, "BULK_ROWS", 1)
    monkeypatch.setattr(postgresql_write, "NEW_CHUNK_ROWS",
                        1 if request.param == "new_chunk" else 10**12)
    return request.param


def hosts_frame(hosts: int, steps: int, start=T0, metrics=("cpu", "mem")) -> pd.DataFrame:
    """Rows by metric, then time, then host (TSBS's order), tags as categoricals."""
    ts = pd.date_range(start, periods=steps, freq="10s", unit="us")
    n = hosts * steps
    host = np.tile(np.arange(hosts), steps)
    return pd.DataFrame({
        "metric": pd.Categorical(np.repeat(list(metrics), n)),
        "ts": pd.DatetimeIndex(np.tile(ts.repeat(hosts), len(metrics))),
        "value": np.arange(n * len(metrics), dtype="f8"),
        "host": pd.Categorical.from_codes(np.tile(host, len(metrics)),
                                          [f"h{i}" for i in range(hosts)]),
        "region": pd.Categorical.from_codes(np.tile(host % 2, len(metrics)), ["eu", "us"]),
    })


def stored(wh) -> pd.DataFrame:
    with wh.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT s.metric, s.labels_key, p.ts, p.value FROM points p JOIN series s "
            "USING (series_id) ORDER BY 1, 2, 3")).fetchall()
    frame = pd.DataFrame(rows, columns=["metric", "labels_key", "ts", "value"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us")
    return frame


def series_last(wh) -> dict:
    with wh.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT s.metric, s.labels_key, l.ts, l.value FROM series_last l "
            "JOIN series s USING (series_id)")).fetchall()
    return {(m, k): (pd.Timestamp(t).tz_convert("UTC"), v) for m, k, t, v in rows}


def expected(frame: pd.DataFrame) -> pd.DataFrame:
    labels = [f'{{"host":"{h}","region":"{r}"}}' for h, r in zip(frame["host"], frame["region"])]
    out = pd.DataFrame({"metric": frame["metric"].astype(str), "labels_key": labels,
                        "ts": frame["ts"].dt.as_unit("us"), "value": frame["value"]})
    out = out.drop_duplicates(["metric", "labels_key", "ts"], keep="last")
    return out.sort_values(["metric", "labels_key", "ts"]).reset_index(drop=True)


def test_categorical_label_columns_store_every_point_with_its_series(wh):
    frame = hosts_frame(hosts=5, steps=30)
    result = wh.write_points(frame, label_columns=["host", "region"])
    assert (result.written, result.skipped) == (300, 0)
    pd.testing.assert_frame_equal(stored(wh), expected(frame))
    last = series_last(wh)
    assert len(last) == 10
    newest = frame[frame["ts"] == frame["ts"].max()]
    for row in newest.itertuples():
        key = (row.metric, f'{{"host":"{row.host}","region":"{row.region}"}}')
        assert last[key] == (row.ts, row.value)


def test_replay_and_overlap_write_only_new_keys_and_keep_stored_values(wh):
    first = hosts_frame(hosts=4, steps=20)
    wh.write_points(first, label_columns=["host", "region"])
    assert wh.write_points(first, label_columns=["host", "region"]).written == 0
    # Half old keys (with other values: a stored point is never overwritten), half new.
    overlap = hosts_frame(hosts=4, steps=20, start=T0 + pd.Timedelta(seconds=100))
    overlap["value"] += 10_000
    result = wh.write_points(overlap, label_columns=["host", "region"])
    assert (result.written, result.skipped) == (80, 80)
    both = expected(pd.concat([overlap, first]))  # the first write wins where keys meet
    pd.testing.assert_frame_equal(stored(wh), both)


def test_a_key_series_last_does_not_know_is_still_not_written_twice(wh):
    frame = hosts_frame(hosts=2, steps=10)
    wh.write_points(frame.iloc[:5], label_columns=["host", "region"])
    # Another SQL client stores the batch's next point without touching series_last.
    later = frame.iloc[[6]]
    with wh.engine.begin() as conn:
        series_id = conn.execute(text(
            "SELECT series_id FROM series WHERE metric = 'cpu' AND labels_key = :k"),
            {"k": '{"host":"h0","region":"eu"}'}).scalar_one()
        conn.execute(text("INSERT INTO points (ts, series_id, value) VALUES (:ts, :s, -1)"),
                     {"ts": later["ts"].iloc[0], "s": series_id})
    result = wh.write_points(frame.iloc[5:], label_columns=["host", "region"])
    assert (result.written, result.skipped) == (len(frame) - 6, 1)
    values = stored(wh).set_index(["metric", "labels_key", "ts"])["value"]
    assert values[("cpu", '{"host":"h0","region":"eu"}', later["ts"].iloc[0])] == -1


def test_a_batch_spanning_chunks_lands_in_each(wh):
    frame = hosts_frame(hosts=3, steps=4, start=T0 - pd.Timedelta(seconds=20))
    assert wh.write_points(frame, label_columns=["host", "region"]).written == len(frame)
    chunks = wh.show_chunks("points")
    assert chunks["rows"].sum() == len(frame) and (chunks["rows"] > 0).sum() == 2
    pd.testing.assert_frame_equal(stored(wh), expected(frame))


def test_repeated_and_unordered_keys_keep_the_last_row_and_the_newest_point(wh):
    frame = hosts_frame(hosts=3, steps=6).sample(frac=1.0, random_state=7)
    repeats = frame.iloc[:4].assign(value=lambda f: f["value"] + 0.5)
    batch = pd.concat([frame, repeats])
    result = wh.write_points(batch, label_columns=["host", "region"])
    assert (result.written, result.skipped) == (len(frame), 4)
    pd.testing.assert_frame_equal(stored(wh), expected(batch))
    last = series_last(wh)
    newest = expected(batch).groupby(["metric", "labels_key"]).last()
    assert {k: (t, v) for k, t, v in zip(newest.index, newest["ts"], newest["value"])} == last


def test_a_bad_label_set_is_one_problem_naming_its_rows_of_every_metric():
    frame = hosts_frame(hosts=3, steps=2)
    frame["host"] = frame["host"].cat.rename_categories(["h0", "bad\x00", "h2"])
    with pytest.raises(ValidationError) as caught:
        prepare_points(frame, label_columns=["host", "region"])
    labels = [p for p in caught.value.problems if p.field == "labels"]
    assert len(labels) == 1 and "(4 rows)" in labels[0].message  # 2 metrics x 2 steps
    assert labels[0].row == 1


def test_series_are_the_same_whatever_the_label_dtype():
    frame = hosts_frame(hosts=3, steps=2)
    plain = frame.astype({"host": str, "region": str, "metric": str})
    by_category = prepare_points(frame, label_columns=["host", "region"])
    by_text = prepare_points(plain, label_columns=["host", "region"])
    pd.testing.assert_frame_equal(by_category.series, by_text.series)
    assert (by_category.frame["series_code"].to_numpy()
            == by_text.frame["series_code"].to_numpy()).all()


def test_writers_sending_the_same_series_in_opposite_orders_both_succeed(wh):
    """Two writers at once (two Warehouse objects, as two processes would be), the same
    3,000 series in ascending and descending order: each batch commits whole. series_last
    rows are locked in series order, whatever the batch's (in batch order, 31 of 39 such
    rounds deadlocked on PostgreSQL)."""
    from warehouse import Warehouse

    other = Warehouse(wh.url)

    def batch(round_: int, descending: bool) -> pd.DataFrame:
        hosts = np.arange(3000)[::-1] if descending else np.arange(3000)
        return pd.DataFrame({"metric": "load", "ts": T0 + pd.Timedelta(seconds=round_),
                             "value": 1.0, "host": [f"h{h}" for h in hosts]})

    wh.write_points(batch(0, False), label_columns=["host"])  # series exist: rows to lock
    def writer(descending: bool) -> None:
        into = other if descending else wh
        for round_ in range(1, 13):
            into.write_points(batch(round_ * 2 + descending, descending),
                              label_columns=["host"])

    errors = run_at_once(writer, (False, True))
    other.close()
    assert errors == []
    assert len(wh.points("load", T0, T0 + pd.Timedelta(minutes=1))) == 3000 * 25
