"""The served warehouse attacked the way a careful attacker would (issues 9 and 11), on DuckDB
and PostgreSQL, through the real app in-process with real users and tokens:

- the read-only SQL escape corpus of tests/storage/test_readonly_sql.py through
  ``POST /api/v1/sql``: every attempt a 4xx problem, nothing written, no file read or made,
  no setting changed;
- SQL, quotes, homoglyphs, NUL, huge strings and path traversal in every name a request
  carries: refused as 4xx problems or stored and read back literally;
- bad bodies (types, NaN, naive times, nesting, malformed NDJSON/Arrow, media types, gzip,
  size): a 4xx problem naming the field, and row counts unchanged;
- credentials: no token in the query string, uniform answers to bad tokens, a fresh session
  at login, CSRF on every state-changing route, viewer/editor refused above their role;
- resource abuse: bucket explosions, unbounded points and SQL results are refused;
- and, over every response and log line of each test, the database password, the users'
  password and the tokens in use never appear.

On PostgreSQL the warehouse connects as a role with a password (the secret to hunt for).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.storage.test_readonly_sql import COMMON, DUCKDB, POSTGRESQL, _owner_url
from warehouse import Warehouse, accounts
from warehouse.server import api_read
from warehouse.server.app import ServerSettings, create_app
from warehouse.server.auth import CSRF_HEADER, SESSION_COOKIE, route_scopes

with warnings.catch_warnings():  # starlette's notice about httpx; the client still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"
ARROW = "application/vnd.apache.arrow.stream"
TABLES = ("recipes", "runs", "step_runs", "series", "points", "users", "api_tokens")
RUN_ID = "4acc51f2-7645-5edd-ae08-a2f6da08ce21"
TS = "2026-11-01T00:00:00Z"
SAFE = {"GET", "HEAD", "OPTIONS"}


class RecordingClient(TestClient):
    """A TestClient that keeps every response, for the secrets scan."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def request(self, *args, **kwargs):
        response = super().request(*args, **kwargs)
        self.seen.append(response)
        return response


@dataclass
class Served:
    engine: str
    wh: Warehouse
    client: RecordingClient
    tokens: dict  # role -> token text
    folder: Path
    db_password: str | None
    secrets: list = field(default_factory=list)

    def auth(self, role: str = "admin") -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def counts(self) -> dict:
        with self.wh.engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in TABLES}


def _seed(wh: Warehouse) -> None:
    start = pd.Timestamp(TS)
    wh.write_runs([{"run_id": RUN_ID, "recipe": "etl", "started_at": start,
                    "finished_at": start + pd.Timedelta("5s"), "status": "succeeded"}])
    wh.write_steps([{"run_id": RUN_ID, "step_id": "extract", "step": "extract",
                     "started_at": start, "status": "succeeded"}])
    wh.write_points(pd.DataFrame({
        "metric": "rows", "ts": pd.date_range(start, periods=200, freq="1min"),
        "value": range(200), "host": "h1"}), label_columns=["host"])


@pytest.fixture
def served(database_url, tmp_path, caplog):
    engine = "duckdb" if database_url.startswith("duckdb") else "postgresql"
    url = database_url if engine == "duckdb" else _owner_url(database_url)
    wh = Warehouse(url)
    _seed(wh)
    tokens = {}
    for name, role in (("vic", "viewer"), ("ed", "editor"), ("root", "admin")):
        accounts.add_user(wh, name, role, PASSWORD)
        tokens[role] = accounts.create_token(wh, name, {"viewer": "read", "editor": "write",
                                                        "admin": "admin"}[role]).token
    app = create_app(wh, listen=False, settings=ServerSettings(
        max_body_bytes=2_000_000, max_json_body_bytes=1_000_000, sql_timeout=5.0,
        sql_max_rows=1000, view_max_rows=100))
    caplog.set_level(logging.DEBUG)
    client = RecordingClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    db_password = make_url(url).password
    served = Served(engine, wh, client, tokens, tmp_path, db_password)
    try:
        yield served
        _assert_no_secret_leaked(served, caplog.text)
    finally:
        client.close()
        wh.close()


def _assert_no_secret_leaked(s: Served, log_text: str) -> None:
    # The one place a token may appear is the answer that makes it (shown once).
    hidden = [x for x in (s.db_password, PASSWORD, *s.tokens.values(), *s.secrets) if x]
    assert s.client.seen, "the test made no request"
    for response in s.client.seen:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in hidden:
            assert secret not in response.text, (response.request.url, response.text[:300])
            # (a session id is in the Set-Cookie of its login, and nowhere else)
            assert secret in s.secrets or secret not in headers, (response.request.url, headers)
    for secret in hidden:
        assert secret not in log_text
    assert s.db_password is not None or s.engine == "duckdb"


def assert_problem(response, *statuses: int) -> dict:
    assert response.status_code in (statuses or range(400, 500)), (
        response.request.method, str(response.request.url)[:200], response.status_code,
        response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == response.status_code and body["title"] and body["type"]
    return body


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*"))


def _settings(s: Served) -> list:
    query = ("SELECT name, value FROM duckdb_settings() ORDER BY name" if s.engine == "duckdb"
             else "SELECT name, setting FROM pg_settings WHERE source NOT IN ('session', "
                  "'client') ORDER BY name")
    with s.wh.engine.connect() as conn:
        return conn.execute(text(query)).fetchall()


# -- read-only SQL over HTTP ----------------------------------------------------------------
def test_readonly_sql_escape_corpus_over_http(served):
    s = served
    out, archive = s.folder / "out", s.folder / "archive"
    out.mkdir()
    archive.mkdir()
    victim = s.folder / "victim.parquet"
    victim.write_bytes(b"PAR1 not really parquet PAR1")
    victim_hash = hashlib.sha256(victim.read_bytes()).hexdigest()
    corpus = COMMON + (DUCKDB if s.engine == "duckdb" else POSTGRESQL)
    pid = "0"
    if s.engine == "postgresql":  # a live session of the warehouse's own role, to signal
        session = s.wh.engine.connect()
        pid = str(session.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        session.rollback()
    s.client.post("/api/v1/sql", headers=s.auth("viewer"), json={"sql": "SELECT 1 AS warm"})
    before, settings_before = s.counts(), _settings(s)
    # every attempt as a viewer; a sample as an admin (who gets no more from analyst SQL)
    attempts = [("viewer", raw) for raw in corpus] + [("admin", raw) for raw in corpus[::7]]
    for role, raw in attempts:
        statement = (raw.replace("{out}", str(out)).replace("{victim}", str(victim))
                     .replace("{archive}", str(archive)).replace("{other_pid}", pid)
                     .replace("{own_pid}", pid))
        response = s.client.post("/api/v1/sql", headers=s.auth(role),
                                 json={"sql": statement})
        body = assert_problem(response)
        assert body.get("detail") and "\n" not in body["detail"], statement
        assert _files(out) == [], statement
    if s.engine == "postgresql":  # the session an attempt tried to signal is alive
        assert session.exec_driver_sql("SELECT 1").scalar_one() == 1
        session.close()
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim_hash
    assert s.counts() == before
    assert _settings(s) == settings_before
    ok = s.client.post("/api/v1/sql", headers=s.auth("viewer"),
                       json={"sql": "SELECT count(*) AS n FROM runs WHERE recipe = :r",
                             "params": {"r": "etl'; DROP TABLE runs; --"}})
    assert ok.status_code == 200 and ok.json() == [{"n": 0}]


# -- hostile names in every parameter --------------------------------------------------------
HOSTILE = ["'; DROP TABLE runs; --", '"points"', "m\u0435tric",  # Cyrillic e
           "a\x00b", "../../etc/passwd", "x" * 30_000]


def _name_requests(name: str):
    """(method, path, keyword arguments) of every route that takes a name."""
    seg = quote(name, safe="")
    big = name if len(name) < 1000 else name * 30  # ~1 MB inside bodies
    point = {"metric": "rows", "ts": TS, "value": 1}
    run = {"run_id": RUN_ID, "recipe": "etl", "started_at": TS, "status": "succeeded"}
    step = {"run_id": RUN_ID, "step_id": "s1", "step": "load", "started_at": TS,
            "status": "succeeded"}
    q = lambda **p: {"params": p}  # noqa: E731
    yield from [
        ("GET", "/api/v1/points", q(metric=name)),
        ("GET", "/api/v1/points", q(metric="rows", labels=json.dumps({name: "h1"}))),
        ("GET", "/api/v1/points", q(metric="rows", labels=json.dumps({"host": [name, "h1"]}))),
        ("GET", "/api/v1/points", q(metric="rows", every="1h", by=name)),
        ("GET", "/api/v1/points", q(metric="rows", every="1h", agg=name)),
        ("GET", "/api/v1/points", q(metric="rows", every=name)),
        ("GET", "/api/v1/points", q(metric="rows", every="1h", fill=name)),
        ("GET", "/api/v1/points", q(metric="rows", start=name)),
        ("GET", "/api/v1/points", q(metric="rows", labels=name)),
        ("GET", "/api/v1/runs", q(recipe=name, status="succeeded")),
        ("GET", "/api/v1/runs", q(status=name)),
        ("GET", "/api/v1/runs", q(end=name)),
        ("GET", "/api/v1/steps", q(run_id=name)),
        ("GET", "/api/v1/steps", q(recipe=name)),
        ("GET", "/api/v1/chunks", q(table=name)),
        ("DELETE", "/api/v1/chunks", q(table=name, older_than="now-1d", dry_run="true")),
        ("DELETE", "/api/v1/chunks", q(table="points", older_than=name, dry_run="true")),
        ("GET", f"/api/v1/views/{seg}", {}),
        ("GET", "/api/v1/views/recipe_daily_stats", q(limit=name)),
        ("POST", f"/api/v1/jobs/{seg}/run", {}),
        ("POST", "/api/v1/jobs/retention/run", {"json": {"now": name}}),
        ("GET", "/api/v1/jobs/runs", q(job=name)),
        ("POST", "/api/v1/rollups/refresh", q(now=name)),
        ("PUT", "/api/v1/retention", {"json": {"table": name, "keep": "30d"}}),
        ("PUT", "/api/v1/retention", {"json": {"table": "points", "keep": name}}),
        ("DELETE", "/api/v1/retention", q(table=name, metric=name)),
        ("POST", "/api/v1/points", {"json": [{**point, "metric": big}]}),
        ("POST", "/api/v1/points", {"json": [{**point, "labels": {big: "x"}}]}),
        ("POST", "/api/v1/points", {"json": [{**point, "run_id": big}]}),
        ("POST", "/api/v1/points", {"json": [point], "params": {"label_columns": name}}),
        ("POST", "/api/v1/runs", {"json": [{**run, "recipe": big}]}),
        ("POST", "/api/v1/runs", {"json": [{**run, "run_id": big}]}),
        ("POST", "/api/v1/runs", {"json": [{**run, "status": big}]}),
        ("POST", "/api/v1/runs", {"json": [{**run, big: 1}]}),
        ("POST", "/api/v1/steps", {"json": [{**step, "step": big}]}),
        ("POST", "/api/v1/steps", {"json": [{**step, "step_id": big}]}),
        ("GET", "/api/v1/auth/tokens", q(user=name)),
        ("DELETE", f"/api/v1/auth/tokens/{seg}", {}),
        ("DELETE", f"/api/v1/auth/users/{seg}", {}),
        ("PUT", f"/api/v1/auth/users/{seg}/password", {"json": {"password": "x" * 12}}),
        ("POST", "/api/v1/auth/users", {"json": {"name": big, "role": "viewer",
                                                 "password": "x" * 12}}),
        ("POST", "/api/v1/auth/tokens", {"json": {"scope": "read", "user": name}}),
        ("POST", "/api/v1/auth/tokens", {"json": {"scope": "read", "expires": name}}),
        ("POST", "/api/v1/auth/tokens", {"json": {"scope": name}}),
    ]


def test_hostile_names_are_refused_or_taken_literally(served):
    s = served
    before = s.counts()
    answers = {}
    for name in HOSTILE:
        for method, path, kwargs in _name_requests(name):
            response = s.client.request(method, path, headers=s.auth("admin"), **kwargs)
            where = (method, path, repr(name[:40]), str(kwargs.get("params"))[:200])
            assert response.status_code < 500, (where, response.text[:300])
            if response.status_code >= 400:
                assert_problem(response)
                assert len(response.text) < 20_000, where  # a 1 MB value is not echoed whole
            answers[where] = response.status_code
    assert s.counts() == before  # nothing written, nobody removed, no table dropped
    # no path leaves the static folder
    for path in ("/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
                 "/static/..%2f..%2fpyproject.toml", "/static/%2fetc%2fpasswd"):
        response = s.client.get(path, headers=s.auth("admin"))
        assert response.status_code == 404 and "root:" not in response.text, path
    # Refusals are specific, not blanket: unknown names 404, malformed values 400/422.
    assert answers["GET", "/api/v1/chunks", repr(HOSTILE[0]), str({"table": HOSTILE[0]})] == 404
    assert answers["POST", f"/api/v1/jobs/{quote(HOSTILE[4], safe='')}/run",
                   repr(HOSTILE[4]), "None"] == 404


def test_hostile_label_values_are_stored_and_read_back_literally(served):
    s = served
    values = ["'; DROP TABLE runs; --", '"points"', "m\u0435tric", "../../etc/passwd",
              "a\\'b", "$1", ":name", "%s", "\u202etxt"]
    rows = [{"metric": "evil", "labels": {"who": v}, "ts": TS, "value": i}
            for i, v in enumerate(values)]
    written = s.client.post("/api/v1/points", headers=s.auth("editor"), json=rows)
    assert written.status_code == 200 and written.json()["written"] == len(values)
    for i, value in enumerate(values):
        got = s.client.get("/api/v1/points", headers=s.auth("viewer"), params={
            "metric": "evil", "labels": json.dumps({"who": value})})
        assert got.status_code == 200, got.text
        assert [(r["who"], r["value"]) for r in got.json()] == [(value, i)]
    assert s.counts()["runs"] == 1


# -- bad bodies -------------------------------------------------------------------------------
def _arrow(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _point(**changes) -> dict:
    return {"metric": "rows", "labels": {"host": "h9"}, "ts": TS, "value": 1, **changes}


_UTC = pa.timestamp("us", "UTC")
GOOD_ARROW = _arrow(pa.table({"metric": ["rows"] * 2, "ts": pa.array([1, 2], _UTC),
                              "value": [1.0, 2.0]}))
#: (what, endpoint, content type, body, expected status, field the problem names)
BAD_BODIES = [
    ("value text", "points", "json", [_point(value="abc")], 422, "value"),
    ("value boolean", "points", "json", [_point(value=True)], 422, "value"),
    ("value object", "points", "json", [_point(value={"a": 1})], 422, "value"),
    ("value 10^400", "points", "json", [_point(value=10**400)], 422, "value"),
    ("value NaN", "points", "raw", b'[{"metric":"rows","ts":"%s","value":NaN}]' % TS.encode(),
     422, "value"),
    ("value Infinity", "points", "raw",
     b'[{"metric":"rows","ts":"%s","value":-Infinity}]' % TS.encode(), 422, "value"),
    ("value 1e999", "points", "raw", b'[{"metric":"rows","ts":"%s","value":1e999}]' % TS.encode(),
     422, "value"),
    ("naive ts", "points", "json", [_point(ts="2026-11-01T00:00:00")], 422, "ts"),
    ("ts number", "points", "json", [_point(ts=1700000000)], 422, "ts"),
    ("ts year 0", "points", "json", [_point(ts="0000-01-01T00:00:00Z")], 422, "ts"),
    ("ts year 10000", "points", "json", [_point(ts="10000-01-01T00:00:00Z")], 422, "ts"),
    ("17 labels", "points", "json", [_point(labels={f"k{i}": "v" for i in range(17)})], 422,
     "labels"),
    ("label 900 kB", "points", "json", [_point(labels={"a": "x" * 900_000})], 422, "labels"),
    ("label NUL", "points", "raw", b'[{"metric":"rows","labels":{"a":"b\\u0000"},"ts":"%s",'
     b'"value":1}]' % TS.encode(), 422, "labels"),
    ("lone surrogate", "points", "raw", b'[{"metric":"r\\ud800","ts":"%s","value":1}]'
     % TS.encode(), 422, "metric"),
    ("one bad row of three", "points", "json", [_point(), _point(value="x"), _point()], 422,
     "value"),
    ("unknown column", "points", "json", [_point(colour="red")], 422, "colour"),
    ("not an array", "points", "json", {"metric": "rows"}, 422, "body"),
    ("array of numbers", "points", "json", [1, 2], 422, "body"),
    ("deep nesting", "points", "raw", b"[" * 100_000 + b"]" * 100_000, 422, "body"),
    ("deep labels", "points", "raw", b'[{"metric":"rows","ts":"%s","value":1,"labels":'
     % TS.encode() + b'{"a":' * 5000 + b"1" + b"}" * 5001 + b"]", 422, "body"),
    ("truncated JSON", "points", "raw", b'[{"metric": "rows"', 422, "body"),
    ("invalid UTF-8", "points", "raw", b'[{"metric":"r\xff","ts":"%s","value":1}]'
     % TS.encode(), 422, "body"),
    ("ndjson array line", "points", "ndjson", b"[1, 2]\n", 422, "body"),
    ("ndjson broken line", "points", "ndjson",
     b'{"metric":"rows","ts":"%s","value":1}\n{oops\n' % TS.encode(), 422, "body"),
    ("ndjson two objects a line", "points", "ndjson",
     b'{"metric":"rows","ts":"%s","value":1}, {"metric":"rows","ts":"%s","value":2}\n'
     % (TS.encode(), TS.encode()), 422, "body"),
    ("ndjson object over two lines", "points", "ndjson",
     b'{"metric":"rows","ts":"%s","value":1}, {"metric":"rows",\n"ts":"%s","value":2}\n'
     % (TS.encode(), TS.encode()), 422, "body"),
    ("arrow garbage", "points", "arrow", b"\xff" * 64, 422, "body"),
    ("arrow empty", "points", "arrow", b"", 422, "body"),
    ("arrow truncated", "points", "arrow", GOOD_ARROW[: len(GOOD_ARROW) // 2], 422, "body"),
    ("arrow naive ts", "points", "arrow", _arrow(pa.table({
        "metric": ["rows"], "ts": pa.array([1], pa.timestamp("us")), "value": [1.0]})), 422,
     "ts"),
    ("arrow NaN", "points", "arrow", _arrow(pa.table({
        "metric": ["rows"] * 2, "ts": pa.array([1, 2], _UTC), "value": [1.0, float("nan")]})),
     422, "value"),
    ("arrow value text", "points", "arrow", _arrow(pa.table({
        "metric": ["rows"], "ts": pa.array([1], _UTC), "value": ["1"]})), 422, "value"),
    ("text/plain", "points", "text/plain", b"[]", 415, None),
    ("form", "points", "application/x-www-form-urlencoded", b"metric=rows", 415, None),
    ("xml", "runs", "application/xml", b"<runs/>", 415, None),
    ("run status", "runs", "json", [{"run_id": RUN_ID, "recipe": "etl", "started_at": TS,
                                     "status": "exploded"}], 422, "status"),
    ("run naive start", "runs", "json", [{"run_id": RUN_ID, "recipe": "etl",
                                          "started_at": "2026-11-01T00:00:00",
                                          "status": "running"}], 422, "started_at"),
    ("run duration 10^30", "runs", "json", [{"run_id": RUN_ID, "recipe": "etl",
                                             "started_at": TS, "status": "running",
                                             "duration_us": 10**30}], 422, "duration_us"),
    ("run params deep", "runs", "json", [{"run_id": RUN_ID, "recipe": "etl", "started_at": TS,
                                          "status": "running",
                                          "params": json.loads('{"a":' * 70 + "1" + "}" * 70)}],
     422, "params"),
    ("run host NUL", "runs", "json", [{"run_id": RUN_ID, "recipe": "etl", "started_at": TS,
                                       "status": "running", "host": "a\x00"}], 422, "host"),
    ("step without step name", "steps", "json", [{"run_id": RUN_ID, "step_id": "s",
                                                  "started_at": TS, "status": "running"}],
     422, "step"),
]
_TYPES = {"json": "application/json", "raw": "application/json",
          "ndjson": "application/x-ndjson", "arrow": ARROW}


def test_bad_bodies_are_named_problems_and_write_nothing(served):
    s = served
    before = s.counts()
    for what, endpoint, kind, body, status, field_name in BAD_BODIES:
        content = (json.dumps(body).encode() if kind == "json"
                   else body if isinstance(body, bytes) else body.encode())
        response = s.client.post(f"/api/v1/{endpoint}", content=content, headers={
            **s.auth("editor"), "Content-Type": _TYPES.get(kind, kind)})
        problem = assert_problem(response, status)
        if field_name:
            named = {e.get("field") for e in problem.get("errors", [])} | {problem.get("detail")}
            assert any(field_name in (n or "") for n in named), (what, problem)
        assert len(response.text) < 20_000, what
    assert s.counts() == before


def test_body_limits_and_encodings(served):
    s = served
    before = s.counts()
    headers = {**s.auth("editor"), "Content-Type": "application/json"}
    # JSON past its own limit (1 MB here), Arrow past the body limit (2 MB here)
    assert_problem(s.client.post("/api/v1/points", headers=headers,
                                 content=b"[" + b" " * 1_100_000 + b"]"), 413)
    assert_problem(s.client.post("/api/v1/points", content=b"\0" * 2_100_000,
                                 headers={**headers, "Content-Type": ARROW}), 413)

    def chunks():  # no Content-Length: counted while it streams
        for _ in range(30):
            yield b" " * 100_000

    assert_problem(s.client.post("/api/v1/points", headers=headers, content=chunks()), 413)
    # a huge batch of small valid rows, over the JSON limit: refused whole, none written
    rows = [_point(ts=f"2026-10-01T00:00:{i % 60:02d}Z", labels={"host": f"h{i}"})
            for i in range(20_000)]
    assert_problem(s.client.post("/api/v1/points", headers=s.auth("editor"), json=rows), 413)
    # gzip is not decoded: a compression bomb is just a bad body, never inflated
    bomb = gzip.compress(b"[" + b" " * 20_000_000 + b"]")
    assert_problem(s.client.post("/api/v1/points", content=bomb,
                                 headers={**headers, "Content-Encoding": "gzip"}))
    # a login body is capped too (fields of at most 64 / 1024 characters)
    too_long = s.client.post("/api/v1/auth/login", json={"name": "x" * 100_000,
                                                          "password": PASSWORD})
    assert_problem(too_long, 422)
    assert s.counts() == before


# -- credentials ------------------------------------------------------------------------------
def test_tokens_only_in_the_authorization_header(served):
    s = served
    token = s.tokens["admin"]
    for params in ({"token": token}, {"access_token": token}, {"api_key": token}):
        assert_problem(s.client.get("/api/v1/info", params=params), 401)
    assert_problem(s.client.get("/api/v1/info", cookies={"token": token}), 401)
    bad = [token[:-1] + ("A" if token[-1] != "A" else "B"), "wht_" + "A" * 43, "wht_",
           "x" * 8000, token + " ", "wht_\u00e9" * 10, f"{token},{token}"]
    details = set()
    for value in bad:
        try:
            response = s.client.get("/api/v1/info", headers={"Authorization": f"Bearer {value}"})
        except UnicodeEncodeError:
            continue  # httpx refuses to send non-ASCII headers at all
        if value == token + " ":
            assert response.status_code == 200  # surrounding blanks are trimmed, as documented
            continue
        details.add(assert_problem(response, 401)["detail"])
    # made-up, one-character-off, and malformed tokens get the same answer: nothing says
    # how close a guess was
    assert details == {"invalid token"}, details
    for header in ("Basic " + token, "Bearer", "bearer  ", token, "Token " + token):
        assert_problem(s.client.get("/api/v1/info", headers={"Authorization": header}), 401)


def _login(s: Served, name: str) -> str:
    response = s.client.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def test_login_issues_a_fresh_session_and_cookie_changes_need_csrf(served):
    s = served
    planted = "attacker-chosen-session-id-0123456789abcdef"
    s.client.cookies.set(SESSION_COOKIE, planted, domain="127.0.0.1", path="/")
    assert_problem(s.client.get("/api/v1/info"), 401)  # a made-up session is nobody
    csrf = _login(s, "root")
    first = s.client.cookies.get(SESSION_COOKIE)
    assert first and first != planted
    s.secrets.append(first)  # a session id never appears in a response body or log
    csrf_again = _login(s, "root")
    second = s.client.cookies.get(SESSION_COOKIE)
    assert second != first and csrf_again != csrf
    s.secrets.append(second)
    assert s.client.get("/api/v1/auth/whoami").json()["via"] == "session"
    before = s.counts()
    changes = [(m, p) for m, p, scope in route_scopes(s.client.app)
               if m not in SAFE and scope not in (None, "public")]
    assert len(changes) >= 10
    for method, path in changes:
        concrete = path.replace("{name}", "refresh_rollups").replace("{token_id}", "nosuch")
        for headers in ({}, {CSRF_HEADER: "forged"}, {CSRF_HEADER: csrf}):  # csrf: stale
            response = s.client.request(method, concrete, headers=headers)
            body = assert_problem(response, 403)
            assert "CSRF" in body["detail"], (method, path, body)
    # the current token passes (the check is not a blanket refusal)
    ok = s.client.post("/api/v1/points", headers={CSRF_HEADER: csrf_again}, json=[_point()])
    assert ok.status_code == 200, ok.text
    assert s.counts()["points"] == before["points"] + 1
    logout = s.client.post("/api/v1/auth/logout", headers={CSRF_HEADER: csrf_again})
    assert logout.status_code == 204
    s.client.cookies.set(SESSION_COOKIE, second, domain="127.0.0.1", path="/")
    assert_problem(s.client.get("/api/v1/info"), 401)  # the old session is gone


def test_roles_cannot_act_above_themselves(served):
    s = served
    before = s.counts()
    refused = 0
    for method, path, scope in route_scopes(s.client.app):
        concrete = path.replace("{name}", "retention").replace("{token_id}", "nosuch")
        for role, allowed in (("viewer", {"read"}), ("editor", {"read", "write"})):
            if scope in (None, "public") or scope in allowed:
                continue
            body = {"json": [_point()]} if path.endswith(("/points", "/runs", "/steps")) else {}
            response = s.client.request(method, concrete, headers=s.auth(role), **body)
            assert_problem(response, 403)
            refused += 1
    assert refused >= 15
    # and a viewer may not mint itself a stronger token, nor one for someone else
    assert_problem(s.client.post("/api/v1/auth/tokens", headers=s.auth("viewer"),
                                 json={"scope": "write"}), 403)
    assert_problem(s.client.post("/api/v1/auth/tokens", headers=s.auth("viewer"),
                                 json={"scope": "read", "user": "root"}), 403)
    assert s.counts() == before
    # expired and revoked tokens: 401
    revoked = accounts.create_token(s.wh, "root", "admin")
    accounts.revoke_token(s.wh, revoked.token_id)
    expired = accounts.create_token(s.wh, "root", "admin", expires="1h",
                                    now=pd.Timestamp.now(tz="UTC") - pd.Timedelta("2h"))
    s.secrets += [revoked.token, expired.token]
    for token in (revoked.token, expired.token):
        assert_problem(s.client.get("/api/v1/info", headers={"Authorization": f"Bearer {token}"}),
                       401)


def test_secrets_stay_out_of_answers_and_logs(served):
    """Requests likely to echo the URL or a credential: info, readiness, SQL errors, a
    bad token, a wrong password. (The scan itself runs on every test of this file.)"""
    s = served
    info = s.client.get("/api/v1/info", headers=s.auth("viewer"))
    assert info.status_code == 200 and "url" in info.text
    assert s.client.get("/readyz").status_code == 200
    for sql in ("SELECT * FROM nosuch", "SELECT current_setting('nosuch_setting')",
                "SELECT * FROM api_tokens", "SELECT CAST('x' AS integer) AS x"):
        assert_problem(s.client.post("/api/v1/sql", headers=s.auth("admin"), json={"sql": sql}))
    assert_problem(s.client.post("/api/v1/auth/login", json={"name": "root",
                                                             "password": PASSWORD + "x"}), 401)
    made = s.client.post("/api/v1/auth/tokens", headers=s.auth("admin"), json={"scope": "read"})
    assert made.status_code == 201
    listed = s.client.get("/api/v1/auth/tokens", headers=s.auth("admin"), params={"user": "root"})
    assert listed.status_code == 200 and made.json()["token"] not in listed.text
    s.client.seen.remove(made)  # the one answer that shows a token, once
    s.secrets.append(made.json()["token"])


# -- resource abuse ---------------------------------------------------------------------------
def test_unbounded_answers_are_refused(served, monkeypatch):
    s = served
    viewer = s.auth("viewer")
    # bucket explosion: every=1us with fill over a year would be 3e13 rows
    for params in ({"every": "1us", "fill": "zero", "start": "2026-01-01T00:00:00Z",
                    "end": "2027-01-01T00:00:00Z"},
                   {"every": "1s", "fill": "previous", "start": "0001-01-01T00:00:00Z",
                    "end": "9999-12-31T00:00:00Z"}):
        body = assert_problem(s.client.get("/api/v1/points", headers=viewer,
                                           params={"metric": "rows", **params}), 400)
        assert body["type"].endswith("result-too-large"), body
    # without fill, buckets only exist where data is: fine
    assert s.client.get("/api/v1/points", headers=viewer, params={
        "metric": "rows", "every": "1us", "start": "0001-01-01T00:00:00Z"}).status_code == 200
    # a raw points query has a row cap (small here)
    monkeypatch.setattr(api_read, "POINTS_MAX_ROWS", 150)
    body = assert_problem(s.client.get("/api/v1/points", headers=viewer,
                                       params={"metric": "rows"}), 400)
    assert "150" in body["detail"]
    assert len(s.client.get("/api/v1/points", headers=viewer, params={
        "metric": "rows", "end": "2026-11-01T01:00:00Z"}).json()) == 60
    # SQL: past the row cap (1000 here), and few rows of huge values
    for sql in ("SELECT a.value FROM points a, points b",
                "SELECT * FROM generate_series(1, 10000000) AS g(x)"):
        body = assert_problem(s.client.post("/api/v1/sql", headers=viewer, json={"sql": sql}),
                              400)
        assert body["type"].endswith("result-too-large"), (sql, body)
    monkeypatch.setattr(api_read, "SQL_MAX_RESULT_BYTES", 1_000_000)
    body = assert_problem(s.client.post("/api/v1/sql", headers=viewer, json={
        "sql": "SELECT repeat('x', 3000000) AS x"}), 400)
    assert body["type"].endswith("result-too-large"), body
    # a view read is capped whatever limit is asked (100 here)
    view = s.client.get("/api/v1/views/series_latest", headers=viewer,
                        params={"limit": 10**12})
    assert view.status_code == 200
    for params in ({"limit": 0}, {"limit": "x"}):
        assert_problem(s.client.get("/api/v1/runs", headers=viewer, params=params), 422)
    # an SQL text past its limit is refused before it reaches the database
    assert_problem(s.client.post("/api/v1/sql", headers=viewer,
                                 json={"sql": "SELECT 1 " + " " * 200_000}), 422)
