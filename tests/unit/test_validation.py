"""Validation needs no database: every bad input is named by row and field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.errors import ValidationError
from warehouse.ingest.points import prepare_points
from warehouse.ingest.runs import prepare_runs, prepare_steps
from warehouse.ingest.validate import Problems, check_text, json_problem, text_problem

TS = pd.date_range("2026-11-25", periods=4, freq="1min", tz="UTC")


def points(**overrides):
    frame = pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}] * 4, "ts": TS,
                          "value": [1.0, 2.0, 3.0, 4.0]})
    for column, (row, value) in overrides.items():
        frame[column] = frame[column].astype(object) if column in frame else None
        frame.at[row, column] = value
    return frame


def rejected(frame, **kw) -> str:
    with pytest.raises(ValidationError) as info:
        prepare_points(frame, **kw)
    return str(info.value)


@pytest.mark.parametrize("column, value, expect", [
    ("value", np.nan, "NaN"),
    ("value", np.inf, "infinite"),
    ("value", "12", "must be a number"),
    ("value", True, "must be a number"),
    ("metric", "", "must not be empty"),
    ("metric", "x" * 201, "limit is 200"),
    ("metric", "cpu'; DROP TABLE points; --", "not allowed"),
    ("metric", 42, "must be a string"),
    ("ts", pd.Timestamp("2026-11-25 00:02:00"), "naive"),
    ("ts", "2026-11-25 00:02:00", "naive"),
    ("ts", "yesterday+00:00", "not a valid ISO-8601"),
    ("ts", 1732492800, "must be a timestamp"),
    ("labels", {"host": "a" * 201}, "limit is 200"),
    ("labels", {"bad key": "x"}, "label name"),
    ("labels", {"run_id": "abc"}, "not allowed"),
    ("labels", {"host": 3}, "must be a string"),
    ("labels", {f"k{i}": "v" for i in range(17)}, "limit is 16"),
    ("labels", "{not json", "not valid JSON"),
])
def test_each_problem_names_row_and_field(column, value, expect):
    message = rejected(points(**{column: (2, value)}))
    assert "row 2" in message and f"'{column}'" in message and expect in message


def test_whole_naive_column_and_unknown_columns():
    frame = points()
    frame["ts"] = frame["ts"].dt.tz_localize(None)
    assert "naive" in rejected(frame)
    assert "unknown column" in rejected(points().assign(colour="red"))
    assert "required column is missing" in rejected(points().drop(columns="value"))


def test_problem_counts_and_first_row():
    frame = points()
    frame["value"] = [np.nan, 1.0, np.nan, np.nan]
    message = rejected(frame)
    assert "row 0" in message and "(3 rows)" in message


def test_label_columns_fast_path_builds_the_same_series():
    by_dict = prepare_points(points())
    by_columns = prepare_points(points().drop(columns="labels").assign(host="a"),
                                label_columns=["host"])
    assert by_dict.series["labels_key"].tolist() == by_columns.series["labels_key"].tolist()


def test_offsets_are_normalised_to_utc():
    frame = points(ts=(0, "2026-11-25T02:00:00+02:00"))
    batch = prepare_points(frame)
    assert batch.frame["ts"].iloc[0] == pd.Timestamp("2026-11-25T00:00:00Z")


def test_steps_need_ids_and_known_status():
    row = {"run_id": "0b7f3c1e-8d2a-4e4b-9f67-1a2b3c4d5e6f", "step_id": "s1", "step": "load",
           "started_at": TS[0], "status": "succeeded", "attempt": 0}
    with pytest.raises(ValidationError, match="attempt"):
        prepare_steps([row])
    with pytest.raises(ValidationError, match="step_id"):
        prepare_steps([row | {"attempt": 1, "step_id": None}])


# -- issue 9: every bad value is a ValidationError naming row and field ------------------
RUN_ID = "0b7f3c1e-8d2a-4e4b-9f67-1a2b3c4d5e6f"
RUN = {"run_id": RUN_ID, "recipe": "etl", "started_at": TS[0], "status": "succeeded"}
STEP = {"run_id": RUN_ID, "step_id": "s1", "step": "load", "started_at": TS[0],
        "status": "succeeded"}
NUL, SURROGATE = "bad\x00text", "bad\udcfftext"  # NUL; invalid UTF-8 decoded surrogateescape


@pytest.mark.parametrize("column, value, expect", [
    ("value", 1 + 2j, "complex"),
    ("value", np.complex128(3 + 0j), "complex"),
    ("value", 10**400, "infinite"),
    ("value", -1.0000001e100, "beyond ±1e+100"),
    ("value", [1.0], "must be a number"),
    ("metric", "cpu\n", "not allowed"),
    ("metric", "cpu\x00", "not allowed"),
    ("metric", ["cpu"], "must be a string"),
    ("labels", {"host": NUL}, "NUL"),
    ("labels", {"host": SURROGATE}, "UTF-8"),
    ("labels", {"host\n": "a"}, "label name"),
    ("labels", {"h\udcff": "a"}, "label name"),
    ("labels", {f"k{i}": "é" * 200 for i in range(16)}, "bytes as JSON"),
    ("labels", [["host", "a"]], "must be a dict"),
    ("ts", "2026-11-25T00:00:00\x00+00:00", "ISO-8601"),
    ("ts", pd.Timestamp("1600-03-01", tz="UTC").to_pydatetime(), None),
    ("run_id", "not-a-uuid\x00", "UUID"),
])
def test_bad_values_in_points(column, value, expect):
    frame = points(**{column: (2, value)})
    if expect is None:  # accepted: the documented range reaches back to year 1
        assert prepare_points(frame).frame["ts"].iloc[2].year == 1600
        return
    message = rejected(frame)
    assert "row 2" in message and f"'{column}'" in message and expect in message


def test_complex_column_is_not_cast_to_its_real_part():
    frame = points()
    frame["value"] = np.array([1 + 2j, 2, 3, 4], dtype=complex)
    assert "complex" in rejected(frame)


@pytest.mark.parametrize("ts, ok", [
    ("0001-01-01T00:00:00+00:00", True), ("9999-12-31T23:59:59.999999+00:00", True),
    ("0001-01-01T00:00:00+01:00", False),  # 0000-12-31 in UTC
    ("9999-12-31T23:00:00-05:00", False),  # 10000-01-01 in UTC
])
def test_timestamp_range_is_years_1_to_9999_utc(ts, ok):
    frame = points(ts=(1, ts))
    if ok:
        prepare_points(frame)
    else:
        assert "outside the range" in rejected(frame) and "row 1" in rejected(frame)


def test_label_columns_must_exist_and_be_label_names():
    frame = points().drop(columns="labels").assign(host="a")
    assert "does not have" in rejected(frame, label_columns=["host", "region"])
    assert "not a valid label name" in rejected(frame.assign(**{"bad key": "x"}),
                                                label_columns=["bad key"])
    assert "column of the batch itself" in rejected(frame, label_columns=["metric"])
    assert "named twice" in rejected(frame, label_columns=["host", "host"])
    # a single name is one column, not the letters of one
    assert prepare_points(frame, label_columns="host").series["labels_key"].tolist() == \
        ['{"host":"a"}']
    nul = frame.assign(host=["a", "b", NUL, "c"])
    message = rejected(nul, label_columns=["host"])
    assert "row 2" in message and "NUL" in message


@pytest.mark.parametrize("data, expect", [
    ([1, 2, 3], "row 0"),
    ([{"metric": "m", "ts": TS[0], "value": 1.0}, ["m", TS[1], 2.0]], "row 1"),
    ("metric,ts,value", "expected a pandas DataFrame"),
    (None, "expected a pandas DataFrame"),
    ({"metric": "m", "ts": TS[0], "value": 1.0}, "equal-length"),
    (pd.DataFrame([[1, 2]], columns=["value", "value"]), "more than once"),
    (pd.DataFrame([[1, 2]]), "column names must be text"),
])
def test_wrong_shapes_are_validation_errors(data, expect):
    with pytest.raises(ValidationError) as info:
        prepare_points(data)
    assert expect in str(info.value)


@pytest.mark.parametrize("prepare, base, column, value, expect", [
    (prepare_runs, RUN, "recipe", "etl\x00", "not allowed"),
    (prepare_runs, RUN, "error_message", NUL, "NUL"),
    (prepare_runs, RUN, "error_message", SURROGATE, "UTF-8"),
    (prepare_runs, RUN, "error_type", NUL, "NUL"),
    (prepare_runs, RUN, "host", SURROGATE, "UTF-8"),
    (prepare_runs, RUN, "host", b"bytes", "must be text"),
    (prepare_runs, RUN, "params", {"a": NUL}, "NUL"),
    (prepare_runs, RUN, "params", {NUL: 1}, "NUL"),
    (prepare_runs, RUN, "params", {"a": [1, {"b": SURROGATE}]}, "UTF-8"),
    (prepare_runs, RUN, "params", '{"a": "\\u0000"}', "NUL"),
    (prepare_runs, RUN, "params", '{"a": "\\udcff"}', "UTF-8"),
    (prepare_runs, RUN, "params", {"z": 1j}, "complex"),
    (prepare_runs, RUN, "attributes", {"a": NUL}, "NUL"),
    (prepare_runs, RUN, "cpu_user_us", 1 + 2j, "integer"),
    (prepare_runs, RUN, "cpu_user_us", True, "integer"),
    (prepare_runs, RUN, "cpu_user_us", [1], "integer"),
    (prepare_runs, RUN, "status", {"x": 1}, "must be one of"),
    (prepare_steps, STEP, "step", "load\x00", "not allowed"),
    (prepare_steps, STEP, "step_id", SURROGATE, "not allowed"),
    (prepare_steps, STEP, "parent_step_id", NUL, "not allowed"),
    (prepare_steps, STEP, "error_message", NUL, "NUL"),
    (prepare_steps, STEP, "host", NUL, "NUL"),
    (prepare_steps, STEP, "depends_on", ["a", NUL], "NUL"),
    (prepare_steps, STEP, "attributes", {"a": SURROGATE}, "UTF-8"),
])
def test_bad_values_in_runs_and_steps(prepare, base, column, value, expect):
    good = dict(base)
    rows = [good, {**good, "run_id": "1b7f3c1e-8d2a-4e4b-9f67-1a2b3c4d5e6f", column: value}]
    with pytest.raises(ValidationError) as info:
        prepare(rows)
    message = str(info.value)
    assert "row 1" in message and f"'{column}'" in message and expect in message


def test_json_nesting_is_bounded():
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ValidationError, match="params"):
        prepare_runs([RUN | {"params": deep}])


def test_text_helpers_for_other_entry_points():
    assert text_problem("fine ✓") is None
    assert "NUL" in text_problem(NUL) and "UTF-8" in text_problem(SURROGATE)
    assert "limit is 3" in text_problem("abcd", max_length=3)
    assert "must be text" in text_problem(b"x")
    assert json_problem({"a": [1, 2.5, None, True, "ok"]}) is None
    assert "NUL" in json_problem({"a": [{"b": NUL}]})
    problems = Problems("records")
    check_text(pd.Series(["ok", NUL, None, NUL]), "message", problems)
    with pytest.raises(ValidationError) as info:
        problems.raise_if_any()
    assert "row 1, field 'message'" in str(info.value) and "(2 rows)" in str(info.value)
