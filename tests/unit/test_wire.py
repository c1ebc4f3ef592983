"""The Arrow encoding of tables between server and client (warehouse.client.wire): a frame
comes back with the values and dtypes it left with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.client import wire


def roundtrip(frame: pd.DataFrame) -> pd.DataFrame:
    return wire.arrow_to_frame(wire.frame_to_arrow(frame))


def query_like(rows: int) -> pd.DataFrame:
    """The shape of a points answer: times, ids, values, an all-None run_id, a labels dict
    shared by the rows of a series, a label column."""
    shared = [{"host": "a"}, {"host": "b", "dc": "x"}]
    return pd.DataFrame({
        "ts": pd.date_range("2026-10-01", periods=rows, freq="10s", tz="UTC").as_unit("us"),
        "series_id": np.arange(rows, dtype="int64") % 2,
        "value": np.linspace(0, 1, rows),
        "run_id": pd.Series([None] * rows, dtype=object),
        "labels": pd.Series([shared[i % 2] for i in range(rows)], dtype=object),
        "host": pd.Series(["a", "b"] * (rows // 2), dtype="str"),
    })


@pytest.mark.parametrize("rows", [0, 2, 360, 200_000])  # 200k: Arrow's threaded conversion
def test_a_query_answer_comes_back_equal(rows):
    frame = query_like(rows)
    back = roundtrip(frame)
    pd.testing.assert_frame_equal(back, frame)
    assert back["run_id"].dtype == object and back["labels"].dtype == object
    if rows >= 3:
        # Rows that shared one labels dict share one again (decoded once per distinct text).
        assert back["labels"][0] is back["labels"][2]
        assert back["labels"][0] is not back["labels"][1]


def test_text_with_missing_values_stays_object_with_none():
    frame = pd.DataFrame({"error": pd.Series(["boom", None, "é"], dtype=object),
                          "n": [1, 2, 3]})
    back = roundtrip(frame)
    assert back["error"].dtype == object
    assert back["error"].tolist() == ["boom", None, "é"]


def test_json_cells_of_every_kind():
    lists = pd.Series([[1, 2], None, [3, 4], [1, 2]], dtype=object)  # equal-length lists
    mixed = pd.Series([{"a": [1, {"b": None}]}, [], None, {"a": [1, {"b": None}]}], dtype=object)
    back = roundtrip(pd.DataFrame({"lists": lists, "mixed": mixed}))
    assert back["lists"].tolist() == [[1, 2], None, [3, 4], [1, 2]]
    assert back["mixed"].tolist() == [{"a": [1, {"b": None}]}, [], None, {"a": [1, {"b": None}]}]
    assert back["lists"].dtype == object and back["mixed"].dtype == object


def test_a_json_column_of_missing_values_only():
    frame = pd.DataFrame({"params": pd.Series([{"k": 1}, None], dtype=object)}).iloc[1:]
    back = roundtrip(frame.reset_index(drop=True))
    assert back["params"].tolist() == [None]


class Ticket:
    """A value Arrow has no type for (sent as its text)."""

    def __str__(self) -> str:
        return "ticket-7"


def test_encoding_never_changes_the_callers_frame():
    ids = pd.Series([Ticket(), None], dtype=object)
    frame = pd.DataFrame({"id": ids, "labels": pd.Series([{"a": 1}, {"a": 2}], dtype=object)})
    before = frame.copy()
    back = roundtrip(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert back["id"].tolist() == ["ticket-7", None]
    assert back["labels"].tolist() == [{"a": 1}, {"a": 2}]


def test_an_index_kept_on_request_comes_back():
    frame = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index([10, 20], name="k"))
    body = wire.frame_to_arrow(frame, preserve_index=True)
    pd.testing.assert_frame_equal(wire.arrow_to_frame(body), frame)


def test_a_body_that_is_not_arrow_is_named():
    with pytest.raises(ValueError, match="not an Arrow IPC stream"):
        wire.arrow_to_frame(b"{\"not\": \"arrow\"}")
