"""Ingest that keeps its promises (issue 9), on DuckDB and PostgreSQL: any timestamp of the
documented range lands in a chunk whatever the span of a batch; bad values and bad files
leave every table as it was with one clear message; a run is one row per run_id; concurrent
``warehouse init`` is serialised; a newer schema is one clear line."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import ValidationError, Warehouse
from warehouse.errors import WarehouseError
from warehouse.ingest.files import ingest_file
from warehouse.timeparse import ts_to_us

TABLES = ("series", "points", "runs", "step_runs", "recipes")
RUN_ID = "0b7f3c1e-8d2a-4e4b-9f67-1a2b3c4d5e6f"
T0 = pd.Timestamp("2026-11-25T08:00:00Z")


def counts(wh) -> dict[str, int]:
    with wh.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def read_back(wh, metric: str) -> pd.DataFrame:
    with wh.engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(text(
            "SELECT p.ts, p.value FROM points p JOIN series s USING (series_id) "
            "WHERE s.metric = :m ORDER BY p.ts"), {"m": metric}).fetchall(), columns=["ts", "value"])
    return frame


def assert_exact(wh, metric: str, ts: pd.Series, values: np.ndarray) -> None:
    stored = read_back(wh, metric)
    stored_us = [ts_to_us(t) for t in stored["ts"]]
    expected_us = ts.dt.tz_convert("UTC").to_numpy(dtype="datetime64[us]").view("i8").tolist()
    assert stored_us == expected_us
    np.testing.assert_array_equal(stored["value"].to_numpy(dtype="f8"), values)


# -- any timestamp, any span ------------------------------------------------------------
@pytest.mark.slow
def test_ten_years_of_daily_points_in_one_batch(wh):
    ts = pd.Series(pd.date_range("2015-01-01", periods=3653, freq="1D", tz="UTC", unit="us"))
    values = np.arange(len(ts), dtype="f8") / 7
    result = wh.write_points(pd.DataFrame({"metric": "daily", "ts": ts, "value": values}))
    assert (result.written, result.skipped) == (len(ts), 0)
    assert_exact(wh, "daily", ts, values)
    chunks = wh.show_chunks("points")
    assert len(chunks) == len(ts) and chunks["rows"].sum() == len(ts)
    tables = wh.info()["tables"].set_index("table")
    assert tables.loc["points", "rows"] == len(ts) and tables.loc["points", "chunks"] == len(ts)
    assert wh.write_points(pd.DataFrame({"metric": "daily", "ts": ts, "value": values})) \
        .skipped == len(ts)


@pytest.mark.slow
def test_years_1600_to_9999_in_one_batch(wh):
    rng = np.random.default_rng(9)
    lo = ts_to_us(pd.Timestamp("1600-01-01", tz="UTC"))
    hi = ts_to_us(pd.Timestamp("9999-12-31T23:59:59.999999Z"))
    us = np.unique(np.concatenate([rng.integers(lo, hi, 400), [lo, hi]]))
    ts = pd.Series(us.astype("datetime64[us]")).dt.tz_localize("UTC")
    values = rng.normal(size=len(ts))
    assert wh.write_points(pd.DataFrame({"metric": "spread", "ts": ts, "value": values})) \
        .written == len(ts)
    assert_exact(wh, "spread", ts, values)
    chunks = wh.show_chunks("points")
    assert chunks["rows"].sum() == len(ts)
    # The chunk of 9999-12-31 would end in year 10000: shown clamped to the last instant.
    assert chunks["range_end"].max() == pd.Timestamp("9999-12-31T23:59:59.999999Z")
    assert chunks["range_start"].min() == pd.Timestamp("1600-01-01", tz="UTC")
    assert wh.info()["tables"].set_index("table").loc["points", "rows"] == len(ts)
    # Each point is inside exactly one chunk.
    for stamp in (ts.iloc[0], ts.iloc[len(ts) // 2], ts.iloc[-1]):
        inside = (chunks["range_start"] <= stamp) & (stamp <= chunks["range_end"])
        assert inside.sum() == 1


def test_a_failed_write_leaves_no_series_behind(wh, monkeypatch):
    before = counts(wh)
    batch = pd.DataFrame({"metric": "new_metric", "labels": [{"host": "x"}],
                          "ts": [T0], "value": [1.0]})

    def broken(*_args, **_kw):
        raise RuntimeError("the database went away mid-write")

    monkeypatch.setattr(wh.backend, "insert_points", broken)
    with pytest.raises(RuntimeError):
        wh.write_points(batch)
    assert counts(wh) == before  # no orphan series row
    monkeypatch.undo()
    assert wh.write_points(batch).written == 1  # the cache did not keep a rolled-back id
    assert counts(wh)["series"] == before["series"] + 1


# -- bad values through the API ----------------------------------------------------------
def _points(**override):
    row = {"metric": "cpu", "labels": {"host": "a"}, "ts": T0, "value": 1.0} | override
    good = {"metric": "cpu", "labels": {"host": "b"}, "ts": T0, "value": 2.0}
    return [good, row]


BAD_POINTS = [
    ("value", _points(value=1 + 2j), "complex"),
    ("labels", _points(labels={"host": "a\x00b"}), "NUL"),
    ("labels", _points(labels={"host": "caf\udce9"}), "UTF-8"),
    ("metric", _points(metric="cpu\x00"), "not allowed"),
    ("ts", _points(ts="10000-01-01T00:00:00+00:00"), "ISO-8601"),
    ("ts", _points(ts=pd.Timestamp("9999-12-31T23:00:00-05:00")), "outside the range"),
    ("run_id", _points(run_id="x\x00"), "UUID"),
    ("value", _points(value=1e155), "beyond"),
]
BAD_RUNS = [
    ("error_message", {"error_message": "boom\x00"}, "NUL"),
    ("error_message", {"error_message": "boom \udcff"}, "UTF-8"),
    ("host", {"host": "h\x00"}, "NUL"),
    ("params", {"params": {"k": "v\x00"}}, "NUL"),
    ("attributes", {"attributes": {"k\udcff": 1}}, "UTF-8"),
    ("cpu_user_us", {"cpu_user_us": 3 + 1j}, "integer"),
]


@pytest.mark.parametrize("field, batch, expect", BAD_POINTS, ids=[b[0] + "-" + b[2] for b in BAD_POINTS])
def test_bad_points_change_nothing(wh, field, batch, expect):
    before = counts(wh)
    with pytest.raises(ValidationError) as info:
        wh.write_points(batch)
    message = str(info.value)
    assert "row 1" in message and f"'{field}'" in message and expect in message
    assert "\n" not in message and counts(wh) == before


def test_the_largest_values_accepted_keep_rollups_and_compression_working(wh):
    """±1e100 is stored exactly and every sum of squares over it stays finite: the rollup
    refresh and compression succeed (one value of 1e155 made PostgreSQL's refresh fail on
    every run with "value out of range: overflow" before values were bounded)."""
    ts = pd.Series(pd.date_range("2026-01-01", periods=600, freq="1min", tz="UTC"))
    values = np.tile([1e100, -1e100, 1.5], 200)
    wh.write_points(pd.DataFrame({"metric": "huge", "ts": ts, "value": values}))
    assert_exact(wh, "huge", ts, values)
    for job in ("refresh_rollups", "compress"):
        assert wh.run_job(job, now=T0).status == "succeeded", job
    hourly = wh.points("huge", ts.iloc[0], ts.iloc[-1] + pd.Timedelta("1h"), every="1h",
                       agg="max")
    assert hourly["value"].tolist() == [1e100] * 10


@pytest.mark.parametrize("field, extra, expect", BAD_RUNS, ids=[b[0] + "-" + b[2] for b in BAD_RUNS])
def test_bad_runs_and_steps_change_nothing(wh, field, extra, expect):
    before = counts(wh)
    good = {"run_id": RUN_ID, "recipe": "etl", "started_at": T0, "status": "failed"}
    bad = good | {"run_id": str(uuid.uuid4())} | extra
    with pytest.raises(ValidationError) as info:
        wh.write_runs([good, bad])
    assert "row 1" in str(info.value) and f"'{field}'" in str(info.value)
    assert expect in str(info.value)
    if field in ("error_message", "host", "attributes"):
        step = {"run_id": RUN_ID, "step_id": "s1", "step": "load", "started_at": T0,
                "status": "failed"}
        with pytest.raises(ValidationError, match=field):
            wh.write_steps([step, step | {"step_id": "s2"} | extra])
    assert counts(wh) == before


def test_label_columns_naming_a_missing_column(wh):
    frame = pd.DataFrame({"metric": ["m"], "ts": [T0], "value": [1.0], "host": ["a"]})
    with pytest.raises(ValidationError, match="'region'.*does not have"):
        wh.write_points(frame, label_columns=["host", "region"])
    assert counts(wh)["points"] == 0


# -- bad files through warehouse.ingest.files --------------------------------------------
GOOD_CSV = 'metric,ts,value,labels\n' + "".join(
    f'm,2026-11-25T00:{i:02d}:00Z,{i},"{{""host"": ""a""}}"\n' for i in range(10))


def _csv(tmp_path, body: bytes, name="points.csv"):
    path = tmp_path / name
    path.write_bytes(body)
    return path


BAD_FILES = [
    # (name, content, message fragment, line)
    ("late_value.csv", GOOD_CSV.encode() + b"m,2026-11-25T01:00:00Z,abc,\n", "must be a number",
     "row 12"),
    ("late_complex.csv", GOOD_CSV.encode() + b"m,2026-11-25T01:00:00Z,1+2j,\n", "must be a number",
     "row 12"),
    ("late_nul.csv", GOOD_CSV.encode() + b'm,2026-11-25T01:00:00Z,1,"{""h"": ""a\\u0000""}"\n',
     "NUL", "row 12"),
    ("late_utf8.csv", GOOD_CSV.encode() + b'm,2026-11-25T01:00:00Z,1,"{""h"": ""caf\xe9""}"\n',
     "UTF-8", "row 12"),
    ("array.ndjson", b'{"metric": "m", "ts": "2026-11-25T00:00:00Z", "value": 1}\n\n[1, 2, 3]\n',
     "JSON array", "row 3"),
    ("broken.ndjson", b'{"metric": "m", "ts": "2026-11-25T00:00:00Z", "value": 1}\n{"metric": \n',
     "not valid JSON", "row 2"),
    ("utf8.ndjson", b'{"metric": "m", "ts": "2026-11-25T00:00:00Z", "value": 1,'
                    b' "labels": {"host": "\xff"}}\n', "UTF-8", "row 1"),
    ("complex.ndjson", b'{"metric": "m", "ts": "2026-11-25T00:00:00Z", "value": "1+2j"}\n',
     "must be a number", "row 1"),
    ("year10000.ndjson", b'{"metric": "m", "ts": "9999-12-31T23:30:00-01:00", "value": 1}\n',
     "outside the range", "row 1"),
]


@pytest.mark.parametrize("name, body, expect, row", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_write_nothing_whatever_the_batch_size(wh, tmp_path, name, body, expect, row):
    path = _csv(tmp_path, body, name)
    before = counts(wh)
    with pytest.raises(ValidationError) as info:
        ingest_file(wh, path, batch_rows=2)  # the bad line is in a later batch
    message = str(info.value)
    assert path.name in message and row in message and expect in message, message
    assert counts(wh) == before


def test_a_good_file_in_small_batches_is_written_whole(wh, tmp_path):
    path = _csv(tmp_path, GOOD_CSV.encode())
    phases = []
    result = ingest_file(wh, path, batch_rows=3, progress=lambda p, d, t: phases.append(p))
    assert (result["rows"], result["written"]) == (10, 10)
    assert phases.index("write") > max(i for i, p in enumerate(phases) if p == "validate")
    assert ingest_file(wh, path, batch_rows=3)["skipped"] == 10


def test_unreadable_files_give_one_line(wh, tmp_path):
    for name, body in (("torn.csv", b'metric,ts,value\n"m,2026\n'),
                       ("bad.parquet", b"PAR1 not really")):
        path = _csv(tmp_path, body, name)
        with pytest.raises(ValueError) as info:
            ingest_file(wh, path, batch_rows=2)
        assert path.name in str(info.value) and "\n" not in str(info.value)
    assert counts(wh)["points"] == 0


# -- runs keyed by run_id alone ----------------------------------------------------------
def test_a_run_rewritten_with_a_corrected_start_stays_one_row(wh):
    started = T0
    corrected = T0 - pd.Timedelta("30D")  # another chunk on PostgreSQL
    wh.write_runs([{"run_id": RUN_ID, "recipe": "etl", "started_at": started,
                    "status": "running", "last_seen_at": started}])
    wh.write_runs([{"run_id": RUN_ID, "recipe": "etl", "started_at": corrected,
                    "finished_at": started, "status": "succeeded"}])
    runs = wh.runs()
    assert len(runs) == 1 and runs["status"].tolist() == ["succeeded"]
    assert runs["started_at"].iloc[0] == corrected
    # A late 'running' row with yet another start neither adds a row nor reopens the run.
    wh.write_runs([{"run_id": RUN_ID, "recipe": "etl", "started_at": T0 + pd.Timedelta("1D"),
                    "status": "running"}])
    runs = wh.runs()
    assert len(runs) == 1 and runs["status"].tolist() == ["succeeded"]
    assert runs["started_at"].iloc[0] == corrected
    with wh.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar_one() == 1


def test_a_step_rewritten_with_a_corrected_start_stays_one_row(wh):
    step = {"run_id": RUN_ID, "step_id": "s1", "step": "load", "started_at": T0,
            "status": "running"}
    wh.write_steps([step])
    corrected = T0 - pd.Timedelta("20D")
    wh.write_steps([step | {"started_at": corrected, "finished_at": T0, "status": "failed"}])
    wh.write_steps([step | {"started_at": T0 + pd.Timedelta("9D")}])  # late, 'running'
    steps = wh.steps(RUN_ID)
    assert len(steps) == 1 and steps["status"].tolist() == ["failed"]
    assert steps["started_at"].iloc[0] == corrected
    with pytest.raises(Exception, match="(?i)duplicate|unique|constraint"):
        with wh.engine.begin() as conn:
            conn.execute(text("INSERT INTO step_runs (run_id, step_id, step, started_at, status) "
                              "VALUES (:r, 's1', 'load', :t, 'running')"),
                         {"r": RUN_ID, "t": T0 - pd.Timedelta("60D")})


def test_a_second_row_for_a_run_id_is_refused_by_the_database(wh):
    wh.write_runs([{"run_id": RUN_ID, "recipe": "etl", "started_at": T0, "status": "running"}])
    with pytest.raises(Exception, match="(?i)duplicate|unique|constraint"):
        with wh.engine.begin() as conn:
            conn.execute(text("INSERT INTO runs (run_id, recipe, started_at, status) "
                              "VALUES (:r, 'etl', :t, 'running')"),
                         {"r": RUN_ID, "t": T0 - pd.Timedelta("60D")})
    assert len(wh.runs()) == 1


def test_migration_0005_merges_duplicate_runs_and_steps(wh):
    if wh.backend.capabilities.single_writer:
        pytest.skip("DuckDB's runs table has been keyed by run_id since 0001")
    wh.downgrade("0004")
    with wh.engine.begin() as conn:
        for days, seen, status in ((0, "2026-11-25T09:00Z", "running"),
                                   (-3, "2026-11-25T10:00Z", "succeeded"),
                                   (-9, None, "failed")):
            start = T0 + pd.Timedelta(days=days)
            conn.execute(text("SELECT wh_ensure_chunk('runs', :t)"), {"t": start})
            conn.execute(text("INSERT INTO runs (run_id, recipe, started_at, status, "
                              "last_seen_at) VALUES (:r, 'etl', :t, :s, :seen)"),
                         {"r": RUN_ID, "t": start, "s": status, "seen": seen})
        for days, status in ((0, "running"), (-2, "succeeded")):
            start = T0 + pd.Timedelta(days=days)
            conn.execute(text("SELECT wh_ensure_chunk('step_runs', :t)"), {"t": start})
            conn.execute(text("INSERT INTO step_runs (run_id, step_id, step, started_at, "
                              "status) VALUES (:r, 's1', 'load', :t, :s)"),
                         {"r": RUN_ID, "t": start, "s": status})
    wh.migrate()
    runs = wh.runs()
    assert len(runs) == 1 and runs["status"].tolist() == ["succeeded"]
    assert runs["started_at"].iloc[0] == T0 - pd.Timedelta(days=3)
    steps = wh.steps(RUN_ID)
    assert len(steps) == 1 and steps["status"].tolist() == ["succeeded"]


# -- schema: concurrent init, unknown revision -------------------------------------------
def test_concurrent_init_on_an_empty_database(database_url):
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def init():
        try:
            start.wait()
            with Warehouse(database_url, migrate=False) as wh:
                wh.migrate()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=init) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Warehouse(database_url) as wh:
        assert wh.revision() == wh.head_revision()
        assert wh.write_points([{"metric": "m", "ts": T0, "value": 1.0}]).written == 1


def test_a_newer_schema_is_one_clear_line(database_url):
    with Warehouse(database_url) as wh:
        head = wh.head_revision()
        with wh.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    expected = (f"database schema is at revision 0099, newer than this code's head {head}; "
                f"upgrade the warehouse package")
    with pytest.raises(WarehouseError) as info:
        Warehouse(database_url)
    assert str(info.value) == expected
    with Warehouse(database_url, migrate=False) as wh:
        with pytest.raises(WarehouseError) as info:
            wh.migrate()
        assert str(info.value) == expected


@pytest.mark.parametrize("name, body, expect, row", BAD_FILES[:5], ids=[b[0] for b in BAD_FILES[:5]])
def test_bad_files_through_the_cli_print_one_line(wh, tmp_path, name, body, expect, row):
    from click.testing import CliRunner

    from warehouse.cli import main

    path = _csv(tmp_path, body, name)
    before = counts(wh)
    url = wh.url
    wh.close()  # DuckDB: one read-write process (and connection pool) per file
    result = CliRunner().invoke(main, ["--url", url, "ingest", str(path), "--batch-rows", "2"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if expect in line]
    assert len(errors) == 1 and row in errors[0] and "Traceback" not in result.output, \
        result.output
    with Warehouse(url) as again:
        assert counts(again) == before
