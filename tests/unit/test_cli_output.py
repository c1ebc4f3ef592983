"""What ``--format csv|json`` prints: plain values that round-trip, the same in both."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import uuid

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from warehouse.cli.output import plain_value, records, show_frame, show_mapping, to_json

RUN = uuid.UUID("6f1c2a8e-0b7d-4c1e-9a57-3d2f0e9b1c11")


@pytest.mark.parametrize(("value", "expected"), [
    (RUN, "6f1c2a8e-0b7d-4c1e-9a57-3d2f0e9b1c11"),
    ({"b": 1, "a": "x"}, '{"a": "x", "b": 1}'),
    (["x", 2], '["x", 2]'),
    (pd.Timestamp("2026-11-20T01:02:03.000004+01:00"), "2026-11-20T00:02:03.000004+00:00"),
    (dt.datetime(2026, 11, 20, tzinfo=dt.UTC), "2026-11-20T00:00:00.000000+00:00"),
    (pd.Timestamp("2026-11-20T00:00:00"), "2026-11-20T00:00:00.000000+00:00"),  # drivers: UTC
    (dt.date(2026, 11, 20), "2026-11-20"),
    (pd.Timedelta(minutes=5), "P0DT0H5M0S"),
    (decimal.Decimal("1.25"), 1.25),
    (np.int64(3), 3), (np.float32(0.5), 0.5), (np.bool_(True), True),
    (float("nan"), None), (float("inf"), None), (pd.NaT, None), (None, None), (pd.NA, None),
    (b"\x01\xff", "01ff"),
])
def test_plain_values(value, expected):
    assert plain_value(value) == expected


def frame():
    return pd.DataFrame({
        "run_id": [RUN, None],
        "ts": pd.to_datetime(["2026-11-20T00:00:00.000001Z", None], utc=True),
        "labels": [{"host": "a", "step": "x,y"}, {}],
        "value": [1.5, np.nan],
        "n": pd.array([1, None], dtype="Int64"),
        "ok": [True, False],
        "silent_for": pd.to_timedelta(["5min", "1h"]),
    })


def capture(function, *args, **kwargs) -> tuple[str, str]:
    import click

    @click.command()
    def command():
        function(*args, **kwargs)

    result = CliRunner().invoke(command, [], catch_exceptions=False)
    return result.stdout, result.stderr


def test_json_and_csv_carry_the_same_values():
    json_out, _ = capture(show_frame, frame(), "json")
    csv_out, _ = capture(show_frame, frame(), "csv")
    rows = json.loads(json_out)
    assert rows == records(frame())
    assert rows[0] == {"run_id": str(RUN), "ts": "2026-11-20T00:00:00.000001+00:00",
                       "labels": '{"host": "a", "step": "x,y"}', "value": 1.5, "n": 1,
                       "ok": True, "silent_for": "P0DT0H5M0S"}
    assert rows[1]["run_id"] is None and rows[1]["ts"] is None and rows[1]["value"] is None
    back = pd.read_csv(io.StringIO(csv_out))
    assert back["run_id"][0] == str(RUN) and back["ts"][0] == rows[0]["ts"]
    assert json.loads(back["labels"][0]) == {"host": "a", "step": "x,y"}
    assert pd.to_datetime(back["ts"], utc=True)[0] == frame()["ts"][0]
    assert pd.to_timedelta(back["silent_for"]).tolist() == frame()["silent_for"].tolist()
    assert back["ok"].tolist() == [True, False]


def test_json_is_strict():
    text = to_json(pd.DataFrame({"x": [np.inf, -np.inf, np.nan]}))
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == [{"x": None}] * 3


def test_the_limit_note_goes_to_stderr():
    out, err = capture(show_frame, pd.DataFrame({"x": range(10)}), "json", limit=3)
    assert len(json.loads(out)) == 3
    assert "showing the first 3 of 10 rows" in err and "--limit 0" in err


def test_a_mapping_prints_as_json_csv_or_lines():
    result = {"failed": [{"file": "a"}], "written": 2, "at": pd.Timestamp("2026-11-20", tz="UTC")}
    out, _ = capture(show_mapping, result, "json")
    assert json.loads(out) == {"failed": [{"file": "a"}], "written": 2,
                               "at": "2026-11-20T00:00:00.000000+00:00"}
    out, _ = capture(show_mapping, result, "csv")
    back = pd.read_csv(io.StringIO(out))
    assert json.loads(back["failed"][0]) == [{"file": "a"}] and back["written"][0] == 2
    out, _ = capture(show_mapping, result, "table")
    assert out.splitlines()[1] == "written  2"


def test_data_cannot_drive_the_terminal_or_break_the_table():
    hostile = pd.DataFrame({"recipe": ["[/]", "[red]x", "a\x1b[2Jb\x07", "c\x9b1m"]})
    out, _ = capture(show_frame, hostile, "table", title="[bold")
    assert "[/]" in out and "[red]x" in out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "a\\x1b[2Jb\\x07" in out
    out, err = capture(show_mapping, {"name": "x\x1b]0;pwned\x07"}, "table")
    assert "\x1b" not in out and "x\\x1b]0;pwned\\x07" in out
    # CSV and JSON are for programs: the data unchanged (JSON escapes control characters).
    out, _ = capture(show_frame, hostile, "json")
    assert [r["recipe"] for r in json.loads(out)] == hostile["recipe"].tolist()
