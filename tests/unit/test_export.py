"""Export of frames: CSV, JSON (records and split), Parquet, XLSX (typed cells, Excel dates,
no formulas from data), and the self-contained HTML report (data cannot close the script)."""

from __future__ import annotations

import json
import uuid

import openpyxl
import pandas as pd
import pytest

from warehouse import export
from warehouse.export.html import report_html

UID = uuid.UUID("6f1d2c3e-9a8b-4c5d-8e7f-0a1b2c3d4e5f")


@pytest.fixture
def frame():
    return pd.DataFrame({
        "ts": pd.to_datetime(["2026-11-01T10:00:00.123456Z", "2026-11-02T00:00:00.000000Z"], utc=True),
        "value": [1.5, float("nan")], "n": [1, 2], "ok": [True, False],
        "name": ["=HYPERLINK(\"http://evil\")", "plain\x07bell"],
        "labels": [{"host": "a"}, {"host": "b", "n": 2}], "run_id": [UID, None]})


def test_csv_and_json_round_trip_values(frame, tmp_path):
    export.write(frame, tmp_path / "f.csv")
    back = pd.read_csv(tmp_path / "f.csv")
    assert back["ts"].tolist() == ["2026-11-01T10:00:00.123456+00:00",
                                   "2026-11-02T00:00:00.000000+00:00"]
    assert json.loads(back["labels"][1]) == {"host": "b", "n": 2}
    assert back["run_id"][0] == str(UID)

    export.to_json(frame, tmp_path / "r.json", "records")
    records = json.loads((tmp_path / "r.json").read_text())
    assert records[0]["ts"].startswith("2026-11-01T10:00:00.123456") and records[1]["value"] is None
    export.write(frame, tmp_path / "s.json", "json-split")
    split = json.loads((tmp_path / "s.json").read_text())
    assert split["columns"] == list(frame.columns) and len(split["data"]) == 2
    with pytest.raises(ValueError, match="records or split"):
        export.to_json(frame, tmp_path / "x.json", "table")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_writes_formula_like_text_as_text(start, tmp_path):
    """A spreadsheet opening the export shows the text; it never runs it (OWASP CSV
    injection). Numbers, even negative ones, and other text are written as they are."""
    frame = pd.DataFrame({"name": [f"{start}cmd|' /C calc'!A0", "ok", None, "a=b"],
                          "value": [-1.5, 2.0, 3.0, -4.0]})
    export.to_csv(frame, tmp_path / "safe.csv")
    back = pd.read_csv(tmp_path / "safe.csv", keep_default_na=False)
    assert back["name"].tolist() == [f"'{start}cmd|' /C calc'!A0", "ok", "", "a=b"]
    assert back["value"].tolist() == [-1.5, 2.0, 3.0, -4.0]

    export.to_csv(frame, tmp_path / "exact.csv", spreadsheet_safe=False)
    exact = pd.read_csv(tmp_path / "exact.csv", keep_default_na=False)
    assert exact["name"][0] == f"{start}cmd|' /C calc'!A0"


def test_parquet_keeps_types_and_time_zone(frame, tmp_path):
    export.write(frame, tmp_path / "f.parquet")
    back = pd.read_parquet(tmp_path / "f.parquet")
    assert str(back["ts"].dt.tz) == "UTC" and back["ts"].iloc[0] == frame["ts"].iloc[0]
    assert back["n"].tolist() == [1, 2] and back["ok"].tolist() == [True, False]


def test_xlsx_typed_cells_dates_without_tz_and_no_formulas(frame, tmp_path):
    path = tmp_path / "f.xlsx"
    rows = export.to_xlsx({"first": frame, "a/b:c*?[]": frame.head(1)}, path)
    assert rows == 3
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["first", "a_b_c____"]
    sheet = book["first"]
    assert [c.value for c in sheet[1]] == list(frame.columns) and sheet.max_row == 3
    ts, value, n, ok, name = (sheet.cell(row=2, column=i) for i in range(1, 6))
    assert ts.is_date and ts.value.tzinfo is None and ts.value.hour == 10
    assert (value.value, n.value, ok.value) == (1.5, 1, True)
    assert name.data_type == "s" and name.value.startswith("=HYPERLINK")  # text, not a formula
    assert sheet.cell(row=3, column=5).value == "plainbell"  # control character dropped
    assert sheet.cell(row=3, column=2).value is None  # NaN is an empty cell


def test_sheet_names_are_unique_and_short():
    names = export.sheet_names(["x" * 40, "x" * 40, "X" * 31])
    assert len(set(n.lower() for n in names)) == 3 and all(len(n) <= 31 for n in names)


def test_format_from_suffix():
    assert export.format_of("a.XLSX") == "xlsx" and export.format_of("b.pq") == "parquet"
    with pytest.raises(ValueError, match="give --format"):
        export.format_of("noext")


def test_html_report_escapes_data_and_titles():
    figure = {"data": [{"type": "table", "cells": {"values": [["</script><script>alert(1)"]]}}],
              "layout": {}}
    text = report_html("<b>T</b>", [{"title": "<img src=x>", "figure": figure},
                                    {"title": "broken", "error": "<oops>"}])
    body = text.split("</head>", 1)[1]
    assert "</script><script>alert(1)" not in body and "\\u003c/script" in body
    assert "<img src=x>" not in body and "&lt;img src=x&gt;" in body
    assert "&lt;oops&gt;" in body and "<title>&lt;b&gt;T&lt;/b&gt;</title>" in text
