"""Wide frames (``Warehouse.write_frame``, ingest/wide.py) need no database: every bad input
is refused naming its row (or metric column) and field, a missing cell is no point, and the
points a wide frame holds are exactly those of the same frame melted to a row per value and
validated by ``prepare_points`` (repeats merged the same way, the last value winning)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warehouse.errors import ValidationError
from warehouse.ingest.points import prepare_points
from warehouse.ingest.wide import prepare_wide

T0 = pd.Timestamp("2026-11-01T00:00:00Z")
TS = pd.date_range(T0, periods=4, freq="1min")


def wide(**columns) -> pd.DataFrame:
    """Four rows of hosts a, b at two instants with cpu and mem, columns replaced or added."""
    frame = pd.DataFrame({"ts": TS, "host": ["a", "b", "a", "b"],
                          "cpu": [1.0, 2.0, 3.0, 4.0], "mem": [5.0, 6.0, 7.0, 8.0]})
    for name, values in columns.items():
        if values is None:
            frame = frame.drop(columns=name)
        else:
            frame[name] = values
    return frame


def problems(data, label_columns=("host",)) -> list[tuple]:
    """(row, field, message) of each problem prepare_wide reports."""
    with pytest.raises(ValidationError) as info:
        prepare_wide(data, label_columns)
    assert info.value.problems
    return [(p.row, p.field, p.message) for p in info.value.problems]


def points_of(batch) -> set[tuple]:
    """The batch's points as (metric, labels_key, ts µs, value)."""
    series = batch.series.reset_index(drop=True)
    codes = batch.frame["series_code"].to_numpy(dtype="i8")
    return set(zip(series["metric"].to_numpy()[codes], series["labels_key"].to_numpy()[codes],
                   batch.ts_us.tolist(), batch.frame["value"].tolist()))


def newest_of(batch) -> None:
    """``newest`` names, per series, a row holding the series' latest instant."""
    codes = batch.frame["series_code"].to_numpy(dtype="i8")
    latest = pd.Series(batch.ts_us).groupby(codes).max()
    assert len(batch.newest) == len(batch.series) == len(latest)
    assert (codes[batch.newest] == np.arange(len(batch.series))).all()
    assert (batch.ts_us[batch.newest] == latest.sort_index().to_numpy()).all()


# -- refused ----------------------------------------------------------------------------------

@pytest.mark.parametrize("column, values, row, message", [
    ("cpu", [1.0, "x", 3.0, 4.0], 1, "must be a number"),
    ("cpu", [1.0, 2.0, "3", 4.0], 2, "must be a number"),
    ("cpu", [1.0, 2.0, 3.0, np.inf], 3, "is infinite"),
    ("mem", [-np.inf, 6.0, np.nan, 8.0], 0, "is infinite"),
    ("cpu", [True, False, True, True], 0, "must be a number, got booleans"),
    ("cpu", pd.Series([1.0, 2.0, True, 4.0], dtype=object), 2, "must be a number"),
    ("cpu", [1.0, 2.0, 3.0, 1 + 2j], 3, "complex"),
    ("mem", [5.0, 1e101, np.nan, 8.0], 1, "beyond"),
    ("run_id", ["not-a-uuid", None, None, None], 0, "UUID"),
])
def test_a_bad_cell_is_named_by_row_and_column(column, values, row, message):
    [(got_row, field, text)] = problems(wide(**{column: values}))
    assert (got_row, field) == (row, column) and message in text


def test_every_bad_cell_is_reported_at_once():
    found = problems(wide(cpu=[1.0, "x", 3.0, 4.0], mem=[5.0, 6.0, np.inf, 8.0]))
    assert {(r, f) for r, f, _ in found} == {(1, "cpu"), (2, "mem")}


def test_the_callers_index_names_the_row():
    frame = wide(cpu=[1.0, 2.0, np.inf, 4.0]).set_axis([10, 20, 30, 40])
    assert [(r, f) for r, f, _ in problems(frame)] == [(30, "cpu")]


def test_naive_timestamps_are_refused():
    [(row, field, message)] = problems(wide(ts=TS.tz_localize(None)))
    assert (row, field) == (0, "ts") and "naive" in message and "4 rows" in message


def test_a_missing_ts_column_is_refused():
    assert problems(wide(ts=None)) == [(None, "ts", "required column is missing")]


def test_a_missing_timestamp_is_refused():
    found = problems(wide(ts=[TS[0], pd.NaT, TS[2], TS[3]]))
    assert [(r, f) for r, f, _ in found] == [(1, "ts")]


@pytest.mark.parametrize("name, message", [
    ("cpu; DROP TABLE points; --", "not allowed"),
    ("cpu'x", "not allowed"),
    ('cpu"x', "not allowed"),
    ("cpu\n", "not allowed"),
    ("cpu usage", "not allowed"),
    ("", "must not be empty"),
    ("m" * 201, "limit is 200"),
])
def test_a_bad_metric_column_name_is_named(name, message):
    [(row, field, text)] = problems(wide(**{name: [1.0, 2.0, 3.0, 4.0]}))
    assert (row, field) == (name, "metric column") and message in text


def test_the_longest_metric_name_is_taken():
    batch, _ = prepare_wide(wide(**{"m" * 200: [1.0, 2.0, 3.0, 4.0]}), ["host"])
    assert "m" * 200 in set(batch.series["metric"])


def test_a_labels_column_is_refused():
    found = problems(wide(labels=[{"host": "a"}] * 4))
    assert [(r, f) for r, f, _ in found] == [(None, "labels")]
    assert "label_columns" in found[0][2]


def test_a_frame_without_metric_columns_is_refused():
    [(row, field, message)] = problems(wide(cpu=None, mem=None))
    assert (row, field) == (None, "(columns)") and "no metric column" in message


def test_label_columns_must_name_columns_of_the_frame():
    [(row, field, message)] = problems(wide(), ["host", "region"])
    assert (row, field) == (None, "label_columns") and "'region'" in message


@pytest.mark.parametrize("label_columns, message", [
    (["ts"], "column of the batch itself"),
    (["run_id"], "column of the batch itself"),
    (["labels"], "column of the batch itself"),
    (["host", "host"], "named twice"),
    (["no-dash"], "not a valid label name"),
])
def test_label_columns_that_cannot_be_labels_are_refused(label_columns, message):
    frame = wide(run_id=[None] * 4, labels=["x"] * 4, **{"no-dash": ["x"] * 4})
    assert any(f == "label_columns" and message in m for _, f, m in problems(frame, label_columns))


def test_label_columns_may_be_named_metric_or_value():
    """A wide frame has no metric or value column, so labels may take those names, as they
    may in a labels dict; the points carry them as labels."""
    batch, _ = prepare_wide(wide(metric=["x", "x", "y", "y"], value=["v"] * 4),
                            ["host", "metric", "value"])
    assert {(m, k) for m, k, _, _ in points_of(batch)} == {
        (name, f'{{"host":"{h}","metric":"{x}","value":"v"}}')
        for name in ("cpu", "mem") for h, x in (("a", "x"), ("b", "x"), ("a", "y"), ("b", "y"))}


def test_a_label_value_too_long_is_refused():
    found = problems(wide(host=["a", "b", "x" * 201, "b"]))
    assert [(r, f) for r, f, _ in found] == [(2, "labels")] and "limit is 200" in found[0][2]


def test_a_label_set_too_big_as_json_is_refused():
    columns = {f"l{i}": ["v" * 190] * 4 for i in range(11)}  # ~2.3 kB of JSON per row
    found = problems(wide(**columns), ["host", *columns])
    # a problem per label set, at its first row, counting every row carrying it
    assert [(r, f) for r, f, _ in found] == [(0, "labels"), (1, "labels")]
    assert all("limit is 2048 (2 rows)" in message for _, _, message in found)


def test_a_lone_surrogate_in_a_label_value_is_refused():
    frame = wide(host=pd.Series(["a", "b\ud800", "a", "b\ud800"], dtype=object))
    [(row, field, message)] = problems(frame)
    assert (row, field) == (1, "labels") and "surrogate" in message


def test_a_lone_surrogate_in_a_label_value_of_a_record_is_refused():
    records = [{"ts": TS[0], "host": "a\udfff", "cpu": 1.0}]
    [(row, field, message)] = problems(records)
    assert (row, field) == (0, "labels") and "surrogate" in message


@pytest.mark.parametrize("shape", ["records", "columns"])
@pytest.mark.parametrize("name, message", [("cpu\ud800", "surrogate"), ("cpu\x00", "NUL")])
def test_a_metric_column_name_that_is_not_storable_text_is_refused(shape, name, message):
    record = {"ts": TS[0], "host": "a", name: 1.0}
    data = [record] if shape == "records" else {k: [v] for k, v in record.items()}
    [(row, field, text)] = problems(data)
    assert (row, field) == (None, "(record)") and message in text and "column name" in text


def test_a_lone_surrogate_in_a_metric_column_of_a_frame_is_refused():
    frame = pd.DataFrame([[TS[0], "a", 1.0]],
                         columns=pd.Index(["ts", "host", "cpu\ud800"], dtype=object))
    [(row, field, text)] = problems(frame)
    assert (row, field) == ("cpu\ud800", "metric column") and "not allowed" in text


def test_a_nul_in_a_label_value_is_refused():
    [(row, field, message)] = problems(wide(host=["a", "b", "a", "b\x00"]))
    assert (row, field) == (3, "labels") and "NUL" in message


def test_column_names_must_be_text():
    frame = wide()
    frame[7] = [1.0, 2.0, 3.0, 4.0]
    [(row, field, message)] = problems(frame)
    assert (row, field) == (None, "(record)") and "must be text" in message


# -- accepted ---------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", [np.nan, None, pd.NA])
def test_a_missing_cell_is_no_point(missing):
    cpu = pd.Series([1.0, missing, 3.0, 4.0], dtype=object if missing is not np.nan else "f8")
    batch, rows = prepare_wide(wide(cpu=cpu), ["host"])
    got = points_of(batch)
    assert len(got) == batch.received == 7
    assert not any(m == "cpu" and ts == TS[1].value // 1000 for m, _, ts, _ in got)
    # the row keeps its other metric, and the copy's row says cpu is missing there
    assert ("mem", '{"host":"b"}', TS[1].value // 1000, 6.0) in got
    assert rows is not None and np.isnan(rows.values[rows.metrics.index("cpu"), 1])


def test_a_nullable_float_column_with_gaps():
    batch, _ = prepare_wide(wide(mem=pd.array([5.0, None, None, 8.0], dtype="Float64")),
                            ["host"])
    assert sorted(v for m, _, _, v in points_of(batch) if m == "mem") == [5.0, 8.0]


def test_a_row_without_any_value_is_no_row_of_the_copy():
    batch, rows = prepare_wide(wide(cpu=[1.0, np.nan, 3.0, 4.0], mem=[5.0, np.nan, 7.0, 8.0]),
                               ["host"])
    assert batch.received == 6 and len(rows.ts_us) == 3
    assert TS[1].value // 1000 not in rows.ts_us.tolist()


def test_a_metric_column_without_any_value_names_no_series():
    batch, _ = prepare_wide(wide(disk=[np.nan] * 4), ["host"])
    assert set(batch.series["metric"]) == {"cpu", "mem"} and batch.received == 8


def test_integers_and_timestamps_as_text_with_offsets():
    frame = wide(ts=["2026-11-01T00:00:00Z", "2026-11-01T01:01:00+01:00",
                     "2026-11-01T00:02:00Z", "2026-11-01T00:03:00Z"], cpu=[1, 2, 3, 4])
    got = points_of(prepare_wide(frame, ["host"])[0])
    assert ("cpu", '{"host":"b"}', TS[1].value // 1000, 2.0) in got


def test_no_label_columns_is_the_empty_label_set():
    batch, _ = prepare_wide(wide(host=None), [])
    assert set(batch.series["labels_key"]) == {"{}"} and batch.received == 8


def test_a_missing_label_value_leaves_the_label_out():
    batch, _ = prepare_wide(wide(region=["eu", None, "eu", None]), ["host", "region"])
    assert set(batch.series["labels_key"]) == {'{"host":"a","region":"eu"}', '{"host":"b"}'}


def test_run_id_applies_to_every_value_of_its_row():
    run = "6f1c2a56-3c4e-4f7e-9d7a-0d3c1e0b5a11"
    batch, _ = prepare_wide(wide(run_id=[run, None, None, None]), ["host"])
    frame = batch.frame.assign(ts_us=batch.ts_us)
    with_run = frame[frame["run_id"].notna()]
    assert len(with_run) == 2 and set(with_run["ts_us"]) == {TS[0].value // 1000}


def test_an_empty_frame_is_no_point():
    batch, rows = prepare_wide(wide().iloc[:0], ["host"])
    assert batch.frame.empty and batch.received == 0 and rows is None


def test_every_input_shape_gives_the_same_points():
    """Categorical labels (a missing one left out, unused categories ignored), an Arrow
    table, records (a key left out is a missing cell), a nullable integer column."""
    plain = points_of(prepare_wide(wide(host=["a", "b", "a", None]), ["host"])[0])
    categorical = wide(host=pd.Categorical(["a", "b", "a", None], categories=["a", "b", "z"]))
    assert points_of(prepare_wide(categorical, ["host"])[0]) == plain
    arrow = pa.Table.from_pandas(wide(host=["a", "b", "a", None]), preserve_index=False)
    assert points_of(prepare_wide(arrow, ["host"])[0]) == plain
    records = [{k: v for k, v in row.items() if not (k == "host" and v is None)}
               for row in wide(host=["a", "b", "a", None]).to_dict("records")]
    assert points_of(prepare_wide(records, ["host"])[0]) == plain
    sparse = [{"ts": TS[0], "host": "a", "cpu": 1.0}, {"ts": TS[1], "host": "a", "mem": 2.0}]
    assert {(m, v) for m, _, _, v in points_of(prepare_wide(sparse, ["host"])[0])} == {
        ("cpu", 1.0), ("mem", 2.0)}
    nullable = wide(cpu=pd.array([1, None, 3, 4], dtype="Int64"))
    assert sorted(v for m, *_, v in points_of(prepare_wide(nullable, ["host"])[0])
                  if m == "cpu") == [1.0, 3.0, 4.0]


def test_one_label_column_may_be_named_as_a_string():
    assert points_of(prepare_wide(wide(), "host")[0]) == points_of(
        prepare_wide(wide(), ["host"])[0])


def test_repeated_rows_with_run_ids_keep_the_last_rows_run_id():
    runs = ["6f1c2a56-3c4e-4f7e-9d7a-0d3c1e0b5a11", "0b9d7c1e-2f3a-4b5c-8d6e-7f8091a2b3c4"]
    frame = pd.DataFrame({"ts": [TS[0], TS[0]], "host": ["a", "a"], "cpu": [1.0, 2.0],
                          "run_id": runs})
    batch, rows = prepare_wide(frame, ["host"])
    assert rows is None and batch.frame["value"].tolist() == [2.0]
    assert [str(r) for r in batch.frame["run_id"]] == [runs[1]]


def test_text_in_an_arrow_string_column_is_refused():
    [(row, field, message)] = problems(wide(mem=pd.array(["1", "2", "3", "4"], dtype="string")))
    assert (row, field) == (0, "mem") and "must be a number (4 rows)" in message


def test_a_repeated_index_names_rows_by_position():
    frame = wide(cpu=[1.0, 2.0, np.inf, 4.0]).set_axis([7, 7, 8, 8])
    assert [(r, f) for r, f, _ in problems(frame)] == [(2, "cpu")]


def test_repeated_rows_merge_the_last_value_winning_and_a_gap_erasing_nothing():
    frame = pd.DataFrame({"ts": [TS[0], TS[0], TS[1], TS[0]], "host": ["a", "a", "a", "a"],
                          "cpu": [1.0, 2.0, 3.0, np.nan], "mem": [5.0, np.nan, 7.0, 9.0]})
    batch, rows = prepare_wide(frame, ["host"])
    assert rows is None  # merged the long way: no rows for the copy
    t0, t1 = TS[0].value // 1000, TS[1].value // 1000
    assert points_of(batch) == {("cpu", '{"host":"a"}', t0, 2.0), ("mem", '{"host":"a"}', t0, 9.0),
                                ("cpu", '{"host":"a"}', t1, 3.0), ("mem", '{"host":"a"}', t1, 7.0)}
    assert batch.received == 6  # every value given, as write_points counts its rows


def test_the_newest_point_of_each_series_is_known():
    frame = wide(ts=[TS[3], TS[2], TS[0], TS[1]], cpu=[1.0, 2.0, np.nan, 4.0])
    batch, _ = prepare_wide(frame, ["host"])
    newest_of(batch)


# -- the same points as the melted frame ------------------------------------------------------

METRICS = ["cpu", "mem", "disk.io"]
CELL = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False).map(  # no square underflows
    lambda x: 0.0 if abs(x) < 1e-150 else x), st.integers(-50, 50))


@st.composite
def wide_frames(draw) -> tuple[pd.DataFrame, list[str]]:
    """A few rows of up to three metrics (cells possibly missing), hosts and regions from
    small sets (a region may be missing) and instants from a few, so label sets repeat and
    (label set, instant) sometimes does."""
    n = draw(st.integers(1, 12))
    metrics = draw(st.lists(st.sampled_from(METRICS), min_size=1, max_size=3, unique=True))
    labels = draw(st.sampled_from([[], ["host"], ["host", "region"]]))
    frame = pd.DataFrame({"ts": [T0 + pd.Timedelta(seconds=s) for s in
                                 draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))]})
    if "host" in labels:
        frame["host"] = draw(st.lists(st.sampled_from("ab"), min_size=n, max_size=n))
    if "region" in labels:
        frame["region"] = draw(st.lists(st.sampled_from(["eu", None]), min_size=n, max_size=n))
    for metric in metrics:
        cells = draw(st.lists(CELL, min_size=n, max_size=n))
        frame[metric] = pd.Series([np.nan if c is None else float(c) for c in cells])
    return frame, labels


def melted(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """A row per value, metric by metric in row order (so a later row of a repeated key is
    later here too: the same value wins), missing cells left out."""
    metrics = [c for c in frame.columns if c not in ("ts", *labels)]
    parts = [frame[["ts", *labels]].assign(metric=m, value=frame[m]) for m in metrics]
    long = pd.concat(parts, ignore_index=True)
    return long[long["value"].notna()].reset_index(drop=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide_frames())
def test_a_wide_frame_holds_the_points_of_its_melted_frame(case):
    frame, labels = case
    batch, rows = prepare_wide(frame, labels)
    long = melted(frame, labels)
    assert points_of(batch) == points_of(prepare_points(long, labels))
    assert len(batch.frame) == len(points_of(batch))  # keys unique, as for points
    assert batch.received == len(long)
    if len(batch.frame):
        newest_of(batch)
    if rows is not None:  # the rows for the copy hold every point, and nothing else
        held = {(rows.metrics[j], rows.labels_keys[s], t, rows.values[j, i])
                for i, (s, t) in enumerate(zip(rows.label_set, rows.ts_us.tolist()))
                for j in range(len(rows.metrics)) if not np.isnan(rows.values[j, i])}
        assert held == points_of(batch)
        # a metric with a missing cell is flagged (its NaN must become NULL in the copy)
        assert not (np.isnan(rows.values).any(axis=1) & ~rows.gaps).any()
    else:  # only a repeated (label set, instant) takes the long way
        assert frame.duplicated(["ts", *labels]).any()
