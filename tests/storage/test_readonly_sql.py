"""Analyst SQL is read-only by construction (issue 9; docs/views.md, "Read-only SQL").

A corpus of escape attempts runs through ``wh.sql`` on DuckDB, on PostgreSQL connected as a
superuser, and on PostgreSQL connected as a non-superuser role that owns the database. After
each attempt: a ReadOnlyError was raised, no row count changed, no file appeared or changed,
no setting changed. Then the documented views still answer with binds, the limits (time,
locks, rows) hold, the reader role is least-privilege, and the CLI refuses the same texts in
one line without a traceback.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql as pgsql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from warehouse import Warehouse, demo
from warehouse.backends.readonly import (
    ANALYST_VIEWS,
    QueryTimeoutError,
    ReadOnlyLimits,
    ResultTooLargeError,
)
from warehouse.cli import main
from warehouse.errors import ReadOnlyError, WarehouseError

pytestmark = pytest.mark.storage

TARGETS = ("duckdb", "postgresql-superuser", "postgresql-owner")
# Locks, sessions and roles are PostgreSQL's (DuckDB readers take no locks and have no roles).
ON_POSTGRESQL = pytest.mark.parametrize("analyst", TARGETS[1:], indirect=True)
TABLES = ("recipes", "series", "points", "runs", "step_runs", "users")
END = pd.Timestamp("2026-11-20", tz="UTC")

# {out}: an empty folder that must stay empty; {victim}: a file that must not change;
# {archive}: where archives would be; {other_pid}: a superuser session; {own_pid}: a session
# of the warehouse's own login role (the superuser or the owner).
COMMON = [
    "SELECT 1; DELETE FROM runs",
    "SELECT 1; COMMIT; DELETE FROM runs",
    "SELECT 1; ROLLBACK; DROP TABLE step_runs CASCADE",
    "SELECT count(*) FROM runs; SELECT count(*) FROM points",
    "COMMIT", "ROLLBACK", "BEGIN", "ABORT",
    "DELETE FROM runs", "UPDATE runs SET status = 'failed'",
    "INSERT INTO recipes (recipe) VALUES ('x')", "TRUNCATE points", "DROP TABLE points",
    "CREATE TABLE stolen AS SELECT * FROM runs", "ALTER TABLE runs ADD COLUMN x integer",
    "CREATE VIEW v AS SELECT 1 AS x", "DROP VIEW recipe_daily_stats",
    "COPY runs TO '{out}/runs.csv'", "COPY (SELECT * FROM points) TO '{victim}'",
    "COPY recipes FROM '{victim}'",
    "WITH gone AS (DELETE FROM runs RETURNING *) SELECT count(*) FROM gone",
    "WITH added AS (INSERT INTO recipes (recipe) VALUES ('x') RETURNING *) SELECT * FROM added",
    "EXPLAIN ANALYZE DELETE FROM runs", "EXPLAIN ANALYZE INSERT INTO recipes (recipe) VALUES ('x')",
    "EXPLAIN SELECT * FROM runs",
    "SET TimeZone = 'Europe/Paris'", "RESET TimeZone",
    "PREPARE wipe AS DELETE FROM runs", "EXECUTE wipe", "VACUUM", "ANALYZE runs",
    "SELECT * FROM users", "SELECT count(*) FROM (SELECT * FROM users) AS u",
    "SELECT * FROM runs WHERE EXISTS (SELECT 1 FROM users)",
]
DUCKDB = [
    "SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_text('/proc/self/environ')", "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/*')", "SELECT * FROM '/etc/passwd'", "FROM '/etc/passwd'",
    "SELECT * FROM '{victim}'", "SELECT * FROM read_parquet('{victim}')",
    "SELECT * FROM parquet_scan('{archive}/**/*.parquet')",
    "SELECT * FROM parquet_metadata('{victim}')", "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM read_json('/etc/hostname')",
    "SELECT count(*) FROM (SELECT * FROM read_text('/etc/hostname'))",
    "SELECT (SELECT content FROM read_text('/etc/hostname'))",
    "WITH x AS (SELECT * FROM read_text('/etc/hostname')) SELECT * FROM x",
    "SELECT * FROM runs, read_text('/etc/hostname')",
    "SELECT * FROM query('SELECT * FROM read_text(''/etc/hostname'')')",
    "SELECT * FROM query_table('users')",
    "DESCRIBE SELECT * FROM read_csv('/etc/passwd')", "SUMMARIZE users", "DESCRIBE users",
    "EXPLAIN ANALYZE COPY points TO '{victim}' (FORMAT parquet)",
    "EXPLAIN ANALYZE SET GLOBAL threads = 1", "EXPLAIN ANALYZE CHECKPOINT",
    "EXPLAIN ANALYZE SELECT * FROM read_text('/etc/hostname')",
    "EXPORT DATABASE '{out}/export'", "PRAGMA enable_profiling", "PRAGMA version",
    "SET GLOBAL threads = 1", "RESET GLOBAL threads", "SET enable_external_access = false",
    "SET lock_configuration = true", "SET VARIABLE x = 1",
    "LOAD parquet", "INSTALL spatial", "ATTACH '{out}/other.duckdb' AS other", "DETACH other",
    "USE system", "CHECKPOINT", "FORCE CHECKPOINT",
    "SELECT * FROM checkpoint()", "SELECT * FROM force_checkpoint()",
    "SELECT * FROM duckdb_settings()", "SELECT * FROM pragma_storage_info('points')",
    "SELECT * FROM wh_invalidated_ranges(1, 2, 3)",
    "SELECT nextval('x')", "SELECT setseed(0.5)", "SELECT write_log('x')", "SELECT sleep_ms(1)",
    "SELECT st_point(1, 2)",
    "SELECT * FROM (WITH users AS (SELECT 1) SELECT * FROM users) AS a, users",
    "WITH a AS (SELECT * FROM users), users AS (SELECT 1) SELECT * FROM a",
    "WITH users AS (SELECT * FROM users) SELECT * FROM users",
    "SELECT * FROM main.users", "SELECT * FROM \"users\"", "SHOW users", "SHOW TABLES",
    "SELECT * FROM (" * 400 + "SELECT 1" + ") AS x" * 400,
]
POSTGRESQL = [
    "COPY runs TO PROGRAM 'touch {out}/pwned'", "COPY (SELECT 1) TO STDOUT",
    "SELECT pg_read_file('/etc/hostname')", "SELECT pg_read_binary_file('/etc/hostname')",
    "SELECT pg_ls_dir('.')", "SELECT pg_stat_file('postgresql.conf')",
    "SELECT lo_import('/etc/hostname')", "SELECT lo_export(1, '{out}/exported')",
    "SELECT set_config('role', session_user, true)",
    "SELECT set_config('session_authorization', session_user, true)",
    "SELECT query_to_xml('SELECT set_config(''role'', session_user, true)', true, false, '')",
    "SELECT query_to_xml('SELECT pg_read_file(''/etc/hostname'')', true, false, '')",
    "SELECT set_config('transaction_read_only', 'off', false)",
    "SELECT * FROM wh_readonly.run_query('DELETE FROM runs RETURNING 1') AS t(x integer)",
    "SELECT pg_terminate_backend({other_pid})", "SELECT pg_cancel_backend({other_pid})",
    "SELECT pg_terminate_backend({own_pid})", "SELECT pg_cancel_backend({own_pid})",
    "SELECT pg_reload_conf()", "SELECT pg_rotate_logfile()", "SELECT pg_switch_wal()",
    "LOCK TABLE points IN ACCESS EXCLUSIVE MODE", "SELECT * FROM runs FOR UPDATE",
    "SELECT * FROM points FOR SHARE",
    "DO $$ BEGIN DELETE FROM runs; END $$", "LISTEN x", "NOTIFY x", "DISCARD ALL",
    "SET ROLE NONE", "RESET ROLE", "SET SESSION AUTHORIZATION DEFAULT",
    "ALTER SYSTEM SET work_mem = '1GB'", "CREATE EXTENSION dblink",
    "SELECT * FROM pg_authid", "SELECT * FROM api_tokens", "SELECT * FROM web_sessions",
    "TABLE users", "SELECT * FROM public.users",
]
CLI_SAMPLE = [COMMON[0], COMMON[1], "COMMIT", "DELETE FROM runs", COMMON[17], "SELECT * FROM users",
              COMMON[20]]
CLI_ENGINE = {"duckdb": ["SELECT * FROM read_text('/proc/self/environ')",
                         "EXPLAIN ANALYZE COPY points TO '{victim}' (FORMAT parquet)", "LOAD parquet"],
              "postgresql": ["COPY runs TO PROGRAM 'touch {out}/pwned'",
                             "SELECT pg_read_file('/etc/hostname')",
                             "SELECT set_config('role', session_user, true)"]}


@dataclass
class Analyst:
    """A loaded warehouse as one target sees it, and what the checks need."""

    target: str
    url: str
    wh: Warehouse
    admin_url: str | None  # PostgreSQL superuser URL (for checks and for signalling tests)
    out: Path
    victim: Path
    archive: Path
    data: demo.DemoData

    @property
    def engine(self) -> str:
        return self.target.split("-")[0]


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _owner_url(super_url: str) -> str:
    """Hand the database to a new non-superuser role with CREATEROLE; its URL."""
    owner, password = f"wh_owner_{secrets.token_hex(4)}", secrets.token_hex(12)
    database = make_url(super_url).database
    with psycopg.connect(_conninfo(super_url), autocommit=True) as admin:
        admin.execute(pgsql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
            pgsql.Identifier(owner), pgsql.Literal(password)))
        admin.execute(pgsql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            pgsql.Identifier(database), pgsql.Identifier(owner)))
    return make_url(super_url).set(username=owner, password=password).render_as_string(
        hide_password=False)


@pytest.fixture(scope="module", params=TARGETS)
def analyst(request, tmp_path_factory):
    target = request.param
    folder = tmp_path_factory.mktemp(target)
    admin_url = None
    if target == "duckdb":
        url = f"duckdb:///{folder / 'warehouse.duckdb'}"
    else:
        server = request.getfixturevalue("postgres_server")
        admin_url = server.create_database(f"wh_ro_{target.split('-')[1]}_{secrets.token_hex(3)}")
        url = _owner_url(admin_url) if target.endswith("owner") else admin_url
    out, archive = folder / "out", folder / "archive"
    out.mkdir()
    archive.mkdir()
    victim = folder / "victim.parquet"
    victim.write_bytes(b"PAR1 not really parquet PAR1")
    wh = Warehouse(url)  # the owner variant migrates as the owner: no superuser needed
    data = demo.generate(days=3, end=END, seed=11)
    demo.load(wh, data)
    yield Analyst(target, url, wh, admin_url, out, victim, archive, data)
    wh.close()


def _state(a: Analyst) -> dict:
    """Row counts, settings and files: what an escape would change."""
    state = {"files": sorted(str(p) for p in a.out.rglob("*")),
             "victim": hashlib.sha256(a.victim.read_bytes()).hexdigest()}
    check_url = a.admin_url or a.url
    if a.engine == "duckdb":
        with a.wh.engine.connect() as conn:
            state["counts"] = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                               for t in TABLES}
            state["settings"] = conn.execute(text(
                "SELECT name, value FROM duckdb_settings() ORDER BY name")).fetchall()
            state["databases"] = conn.execute(text(
                "SELECT database_name FROM duckdb_databases() ORDER BY 1")).fetchall()
        return state
    with psycopg.connect(_conninfo(check_url)) as admin:
        state["counts"] = {t: admin.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                           for t in TABLES}
        state["roles"] = admin.execute(
            "SELECT rolname, rolsuper, rolcanlogin FROM pg_roles ORDER BY 1").fetchall()
        state["relations"] = admin.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchone()[0]
        state["server_settings"] = admin.execute(
            "SELECT name, setting FROM pg_settings WHERE source NOT IN ('session', 'client') "
            "ORDER BY name").fetchall()
        state["advisory_locks"] = admin.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]
    with a.wh.engine.connect() as conn:  # the pooled session analyst SQL ran on
        state["session"] = conn.execute(text(
            "SELECT current_user, session_user, current_setting('role'), "
            "current_setting('statement_timeout'), current_setting('TimeZone'), "
            "current_setting('transaction_read_only'), current_setting('search_path')")).one()
    return state


def _fill(statement: str, a: Analyst, **extra) -> str:
    return (statement.replace("{out}", str(a.out)).replace("{victim}", str(a.victim))
            .replace("{archive}", str(a.archive))
            .replace("{other_pid}", str(extra.get("other_pid", 0)))
            .replace("{own_pid}", str(extra.get("own_pid", 0))))


def test_every_escape_attempt_is_refused_and_changes_nothing(analyst):
    a = analyst
    corpus = COMMON + (DUCKDB if a.engine == "duckdb" else POSTGRESQL)
    pids, sessions = {}, []
    if a.engine == "postgresql":
        other = psycopg.connect(_conninfo(a.admin_url), autocommit=True)
        own = a.wh.engine.connect()
        sessions = [other, own]
        pids = {"other_pid": other.info.backend_pid,
                "own_pid": own.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()}
        own.rollback()
    a.wh.sql("SELECT 1 AS warm")  # PostgreSQL makes its reader role on first use
    before = _state(a)
    refused = {}
    try:
        for raw in corpus:
            statement = _fill(raw, a, **pids)
            with pytest.raises(ReadOnlyError) as caught:
                a.wh.sql(statement)
            message = str(caught.value)
            assert message and "\n" not in message, (statement, message)
            refused[statement] = message
            assert _state(a) == before, f"state changed by: {statement}"
        if sessions:  # the sessions an attempt tried to signal are alive
            assert sessions[0].execute("SELECT 1").fetchone() == (1,)
            assert sessions[1].exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        for session in sessions:
            session.close()
    assert len(refused) == len(corpus)
    # and the warehouse still answers
    assert a.wh.sql("SELECT count(*) AS n FROM runs")["n"].iloc[0] == len(a.data.runs)


def test_the_refusals_name_the_reason(analyst):
    a = analyst
    reasons = {
        "SELECT 1; COMMIT; DELETE FROM runs": "exactly one statement",
        "DELETE FROM runs": "SELECT" if a.engine == "duckdb" else "only a query",
        "SELECT * FROM users": "users",
    }
    if a.engine == "duckdb":
        reasons["SELECT * FROM read_text('/proc/self/environ')"] = "read_text"
        reasons["SELECT * FROM '/etc/passwd'"] = "/etc/passwd"
        reasons["EXPLAIN ANALYZE COPY points TO 'x.parquet'"] = "EXPLAIN"
    else:
        reasons["SELECT pg_read_file('/etc/hostname')"] = "pg_read_file"
        reasons["SELECT set_config('role', session_user, true)"] = "security-definer"
    for statement, reason in reasons.items():
        with pytest.raises(ReadOnlyError, match=reason):
            a.wh.sql(statement)


def test_documented_views_and_tables_answer_with_binds(analyst):
    a = analyst
    for view in ANALYST_VIEWS:
        frame = a.wh.sql(f"SELECT * FROM {view}")
        assert isinstance(frame, pd.DataFrame) and len(frame.columns) > 0, view
    runs = a.data.runs
    recipe = runs["recipe"].iloc[0]
    daily = a.wh.sql("SELECT recipe, day, runs FROM recipe_daily_stats WHERE recipe = :r "
                     "ORDER BY day;", {"r": recipe})
    assert set(daily["recipe"]) == {recipe}
    assert daily["runs"].sum() == (runs["recipe"] == recipe).sum()
    run_id = str(runs["run_id"].iloc[0])
    timeline = a.wh.sql("SELECT step FROM run_timeline WHERE CAST(run_id AS VARCHAR) = :id",
                        {"id": run_id})
    steps = a.data.steps
    assert len(timeline) == (steps["run_id"].astype(str) == run_id).sum()
    start = pd.Timestamp("2026-11-19", tz="UTC")
    points = a.wh.sql("SELECT count(*) AS n FROM points WHERE ts >= :t AND value > :v",
                      {"t": start, "v": -1e300})
    assert points["n"].iloc[0] == (a.data.points["ts"] >= start).sum()
    both = a.wh.sql("SELECT count(*) AS n FROM all_points WHERE ts >= :t", {"t": start})
    assert both["n"].iloc[0] == points["n"].iloc[0]
    series = a.wh.sql("SELECT metric, count(*) AS n FROM series_latest GROUP BY metric "
                      "ORDER BY metric")
    assert set(series["metric"]) == set(a.data.points["metric"])
    # text that looks like a bind or a format code is data, not a parameter
    literal = a.wh.sql("SELECT '100%' AS pct, :v AS v -- a comment, then nothing", {"v": "a:b"})
    assert literal.to_dict("records") == [{"pct": "100%", "v": "a:b"}]
    with pytest.raises(WarehouseError, match=":missing"):
        a.wh.sql("SELECT :missing AS x")


def test_the_row_cap_refuses_rather_than_cuts(analyst, monkeypatch):
    a = analyst
    monkeypatch.setenv("WAREHOUSE_SQL_MAX_ROWS", "50")
    with pytest.raises(ResultTooLargeError, match="more than 50 rows"):
        a.wh.sql("SELECT * FROM points")
    assert len(a.wh.sql("SELECT * FROM points ORDER BY ts LIMIT 50")) == 50
    assert a.wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0] == len(a.data.points)


def test_a_long_statement_is_cancelled_at_the_time_limit(analyst, monkeypatch):
    a = analyst
    monkeypatch.setenv("WAREHOUSE_SQL_TIMEOUT", "1")
    slow = ("SELECT pg_sleep(30)" if a.engine == "postgresql"
            else "SELECT count(*) FROM range(100000000) AS a, range(100000000) AS b")
    with pytest.raises(QueryTimeoutError, match="1 s time limit"):
        a.wh.sql(slow)
    assert a.wh.sql("SELECT count(*) AS n FROM runs")["n"].iloc[0] == len(a.data.runs)


@ON_POSTGRESQL
def test_waiting_for_a_lock_is_cancelled(analyst, monkeypatch):
    a = analyst
    monkeypatch.setenv("WAREHOUSE_SQL_TIMEOUT", "2")
    with psycopg.connect(_conninfo(a.admin_url)) as holder:
        holder.execute("LOCK TABLE recipes IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(QueryTimeoutError, match="lock"):
            a.wh.sql("SELECT * FROM recipes")
        holder.rollback()
    assert len(a.wh.sql("SELECT * FROM recipes")) > 0


@ON_POSTGRESQL
def test_session_locks_taken_by_a_query_are_released(analyst):
    a = analyst
    a.wh.sql("SELECT pg_advisory_lock(424242)")  # a read, allowed; the lock must not stay
    with psycopg.connect(_conninfo(a.admin_url)) as other:
        assert other.execute("SELECT pg_try_advisory_lock(424242)").fetchone() == (True,)


@ON_POSTGRESQL
def test_the_reader_role_is_least_privilege(analyst):
    a = analyst
    a.wh.sql("SELECT 1 AS one")
    with psycopg.connect(_conninfo(a.admin_url)) as admin:
        role = admin.execute("SELECT 'wh_reader_' || left(md5(current_database()), 16)"
                             ).fetchone()[0]
        attrs = admin.execute(
            "SELECT rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolbypassrls "
            "FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        assert attrs == (False, False, False, False, False)
        assert admin.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r "
                             "ON r.oid = m.member WHERE r.rolname = %s", [role]).fetchone() == (0,)
        for relation, allowed in (("points", True), ("recipe_daily_stats", True),
                                  ("users", False), ("api_tokens", False)):
            assert admin.execute("SELECT has_table_privilege(%s, %s, 'SELECT')",
                                 [role, relation]).fetchone() == (allowed,), relation
        assert admin.execute("SELECT has_table_privilege(%s, 'runs', 'INSERT, UPDATE, DELETE')",
                             [role]).fetchone() == (False,)
        for special in ("pg_read_server_files", "pg_execute_server_program",
                        "pg_signal_backend", "pg_write_server_files"):
            assert admin.execute("SELECT pg_has_role(%s, %s, 'MEMBER')",
                                 [role, special]).fetchone() == (False,)
        assert admin.execute("SELECT has_function_privilege('public', "
                             "'wh_readonly.run_query(text)', 'EXECUTE')").fetchone() == (False,)


def test_setting_up_the_reader_from_many_sessions_at_once(postgres_server):
    url = postgres_server.create_database(f"wh_ro_race_{secrets.token_hex(3)}")
    Warehouse(url).close()  # migrated; the reader is made lazily by the first analyst query
    warehouses = [Warehouse(url) for _ in range(4)]
    barrier, errors, answers = threading.Barrier(len(warehouses)), [], []

    def first_query(wh):
        barrier.wait()
        try:
            answers.append(int(wh.sql("SELECT count(*) AS n FROM runs")["n"].iloc[0]))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=first_query, args=(wh,)) for wh in warehouses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for wh in warehouses:
        wh.close()
    assert errors == [] and answers == [0] * len(warehouses)


@ON_POSTGRESQL
def test_grant_analyst_gives_select_on_documented_relations_only(analyst):
    a = analyst
    role, password = f"wh_analyst_{secrets.token_hex(3)}", secrets.token_hex(12)
    for _ in range(2):  # idempotent
        with a.wh.engine.begin() as conn:
            a.wh.backend.grant_analyst(conn, role, timeout_s=30)
    with psycopg.connect(_conninfo(a.admin_url), autocommit=True) as admin:
        admin.execute(pgsql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
            pgsql.Identifier(role), pgsql.Literal(password)))
    as_analyst = make_url(a.admin_url).set(username=role, password=password)
    with psycopg.connect(_conninfo(as_analyst.render_as_string(hide_password=False))) as conn:
        assert conn.execute("SELECT count(*) FROM recipe_daily_stats").fetchone()[0] > 0
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        for denied in ("SELECT * FROM users", "SELECT pg_read_file('/etc/hostname')",
                       "INSERT INTO recipes (recipe) VALUES ('x')"):
            with pytest.raises(psycopg.Error):
                conn.execute(denied)
            conn.rollback()
    with a.wh.engine.begin() as conn, pytest.raises(WarehouseError, match="superuser"):
        a.wh.backend.grant_analyst(conn, make_url(a.admin_url).username)
    with a.wh.engine.begin() as conn, pytest.raises(ValueError, match="reserved"):
        a.wh.backend.grant_analyst(conn, "pg_monitor")


def test_grant_analyst_on_duckdb_says_there_are_no_roles(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with wh.engine.connect() as conn, pytest.raises(WarehouseError, match="no database roles"):
        wh.backend.grant_analyst(conn, "analyst")
    wh.close()


def test_the_cli_refuses_in_one_line_without_a_traceback(analyst):
    a = analyst
    before = _state(a)
    runner = CliRunner()
    for raw in CLI_SAMPLE + CLI_ENGINE[a.engine]:
        statement = _fill(raw, a)
        result = runner.invoke(main, ["--url", a.url, "sql", statement])
        said = result.stdout + result.stderr
        assert result.exit_code != 0, (statement, said)
        assert "Traceback" not in said, said
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (statement, said)
        assert _state(a) == before, statement
    good = runner.invoke(main, ["--url", a.url, "sql", "--format", "csv",
                                "SELECT count(*) AS n FROM runs WHERE recipe <> :r",
                                "--param", "r=none"])
    assert good.exit_code == 0, good.output
    assert str(len(a.data.runs)) in good.output


def test_limits_reject_nonsense():
    with pytest.raises(ValueError):
        ReadOnlyLimits(timeout_s=0)
    with pytest.raises(ValueError):
        ReadOnlyLimits(max_rows=0)


def test_archived_history_is_readable_through_all_points_only(wh, tmp_path, monkeypatch):
    """DuckDB's all_points reads the archive's Parquet files; analyst SQL cannot read them
    (or any file) directly, nor overwrite one — the forged-archive attack of issue 9."""
    from warehouse import jobs

    root = tmp_path / "archive"
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(root))
    now = pd.Timestamp("2026-11-12T00:00:00Z")
    ts = pd.date_range("2026-11-01", periods=10 * 24, freq="h", tz="UTC")
    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": ts, "value": range(len(ts))}))
    jobs.set_retention(wh, "points", "5d", archive=True)
    for job in ("refresh_rollups", "archive", "retention"):
        assert jobs.run_job(wh, job, now=now, retries=0).status == "succeeded"
    files = sorted(root.rglob("*.parquet"))
    assert files
    digests = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    values = wh.points("cpu")
    hot = int(wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0])
    assert hot < len(ts)
    everything = int(wh.sql("SELECT count(*) AS n FROM all_points")["n"].iloc[0])
    assert everything == (len(ts) if wh.backend.capabilities.parquet_scan else hot)

    target = str(files[0])
    attempts = [f"COPY points TO '{target}'", f"COPY (SELECT 1 AS x) TO '{target}'"]
    if wh.backend.capabilities.parquet_scan:
        attempts += [
            f"SELECT * FROM read_parquet('{root}/**/*.parquet')",
            f"SELECT * FROM parquet_scan('{target}')", f"SELECT * FROM '{target}'",
            f"EXPLAIN ANALYZE COPY (SELECT ts, series_id, 0.0 AS value, run_id FROM points) "
            f"TO '{target}' (FORMAT parquet)",
            f"SELECT * FROM parquet_metadata('{target}')"]
    else:
        attempts += [f"SELECT pg_read_binary_file('{target}')"]
    for attempt in attempts:
        with pytest.raises(ReadOnlyError):
            wh.sql(attempt)
    assert {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files} == digests
    assert sorted(root.rglob("*.parquet")) == files
    pd.testing.assert_frame_equal(wh.points("cpu"), values)


def test_without_createrole_the_refusal_says_what_is_needed(postgres_server):
    super_url = postgres_server.create_database(f"wh_ro_plain_{secrets.token_hex(3)}")
    owner, password = f"wh_plain_{secrets.token_hex(4)}", secrets.token_hex(12)
    with psycopg.connect(_conninfo(super_url), autocommit=True) as admin:
        admin.execute(pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            pgsql.Identifier(owner), pgsql.Literal(password)))
        admin.execute(pgsql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            pgsql.Identifier(make_url(super_url).database), pgsql.Identifier(owner)))
    wh = Warehouse(make_url(super_url).set(username=owner, password=password)
                   .render_as_string(hide_password=False))
    try:
        with pytest.raises(ReadOnlyError, match="CREATEROLE"):
            wh.sql("SELECT count(*) AS n FROM runs")
        assert wh.revision() == wh.head_revision()  # nothing else was affected
    finally:
        wh.close()
