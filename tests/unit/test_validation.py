"""Validation needs no database: every bad input is named by row and field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.errors import ValidationError
from warehouse.ingest.points import prepare_points
from warehouse.ingest.runs import prepare_steps

TS = pd.date_range("2026-11-25", periods=4, freq="1min", tz="UTC")


def points(**overrides):
    frame = pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}] * 4, "ts": TS,
                          "value": [1.0, 2.0, 3.0, 4.0]})
    for column, (row, value) in overrides.items():
        frame[column] = frame[column].astype(object)
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
