"""The dashboard pages over HTTP, without a browser, on DuckDB and PostgreSQL: bad
parameters are named, nothing user-written runs as markup or a formula, logins guard every
page, exports hold what the page shows."""

from __future__ import annotations

import html
import io
import json
import re
import uuid
import warnings
from urllib.parse import quote

import pandas as pd
import pytest

from warehouse import accounts
from warehouse.server.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

HOSTILE = '<img src=x onerror=alert(1)></script>'
RECIPE = "team/etl@v2+x"  # names may hold '/', '@', '+': pages must route them
STEP = "load:part/2"


@pytest.fixture
def client(wh):
    now = pd.Timestamp.now(tz="UTC")
    run_id = str(uuid.uuid4())
    wh.write_runs(pd.DataFrame([
        {"run_id": run_id, "recipe": RECIPE, "status": "failed",
         "started_at": now - pd.Timedelta(minutes=3), "finished_at": now - pd.Timedelta(minutes=2),
         "error_type": "=cmd|'/c calc'!A1", "error_message": HOSTILE},
        {"run_id": str(uuid.uuid4()), "recipe": "etl", "status": "succeeded",
         "started_at": now - pd.Timedelta(hours=2), "finished_at": now - pd.Timedelta(hours=1)},
    ]))
    wh.write_steps(pd.DataFrame([{"run_id": run_id, "step_id": "s1", "step": STEP,
                                  "started_at": now - pd.Timedelta(minutes=3),
                                  "finished_at": now - pd.Timedelta(minutes=2),
                                  "status": "failed", "error_message": HOSTILE}]))
    with TestClient(create_app(wh, listen=False), base_url="http://127.0.0.1") as test_client:
        test_client.run_id = run_id
        yield test_client


BAD = [
    ("/?range=forever", "range must be one of"),
    ("/?range=custom&from=now&to=now-1d", "'from'"),
    ("/?from=yesterday-ish", "'from'"),
    ("/?from=now-99999999999d", "'from'"),
    ("/recipes/etl?status=exploded", "'status'"),
    ("/recipes/etl?page=two", "'page'"),
    ("/metrics?labels=justaname", "labels"),
    ("/metrics?every=7y", "'every'"),
    ("/metrics?agg=median-ish", "'agg'"),
    ("/metrics?metric=nope", "unknown metric 'nope'"),
]


def test_bad_parameters_are_named(client):
    for query, named in BAD:
        response = client.get(query)
        assert response.status_code == 400, query
        assert named in html.unescape(response.text), query
        assert named in client.get(query + "&format=json").json()["detail"], query


def test_export_and_format_errors(client):
    assert client.get("/?format=xml").status_code == 400
    assert "table must be one of" in client.get("/?format=csv&table=secrets").json()["detail"]
    assert client.get("/runs/not-a-uuid").status_code == 404
    assert client.get(f"/runs/{uuid.uuid4()}?format=json").status_code == 404


def test_user_text_is_never_markup_or_a_formula(client):
    for path in ("/", f"/runs/{client.run_id}", "/recipes/" + quote(RECIPE, safe=""),
                 f"/recipes/{quote(RECIPE, safe='')}/steps/{quote(STEP, safe='')}"):
        page = client.get(path, params={"range": "24h"})
        assert page.status_code == 200, path
        assert page.text.count("failed") >= 1
        assert HOSTILE not in page.text  # escaped in HTML ...
        data = re.search(r'<script type="application/json" id="page-data">(.*?)</script>',
                         page.text, re.S).group(1)
        assert "<" not in data  # ... and in the page's JSON, which still holds it
        if "/recipes/" not in path:
            assert HOSTILE in json.dumps(json.loads(data), ensure_ascii=False)
    csv = client.get("/", params={"range": "24h", "format": "csv", "table": "failures"})
    frame = pd.read_csv(io.StringIO(csv.text))
    assert frame["error_type"].tolist() == ["'=cmd|'/c calc'!A1"]
    assert frame["error_message"].tolist() == [HOSTILE]


def test_a_dashboard_title_never_shows_a_raw_variable(client):
    unset = client.get("/dashboards/performance-overview").text
    assert "${recipe}" not in unset and "Performance overview: …" in unset
    chosen = client.get("/dashboards/performance-overview", params={"recipe": "etl"}).text
    assert "Performance overview: etl" in chosen


def test_run_page_shows_the_points_of_its_run_and_no_others(client, wh):
    started = pd.Timestamp(wh.sql("SELECT started_at FROM runs WHERE run_id = :r",
                                  {"r": client.run_id})["started_at"].iloc[0])
    # Inside the run, stamped a little after it finished (within the page's slack), long
    # before it (outside), and another run's point at the same time.
    wh.write_points(pd.DataFrame({
        "metric": ["rows", "rows", "rows", "rows"],
        "ts": [started + pd.Timedelta(seconds=30), started + pd.Timedelta(minutes=10),
               started - pd.Timedelta(days=3), started + pd.Timedelta(seconds=40)],
        "value": [1.0, 2.0, 3.0, 4.0],
        "run_id": [client.run_id, client.run_id, client.run_id, str(uuid.uuid4())]}))
    page = client.get(f"/runs/{client.run_id}", params={"format": "json"}).json()
    assert [m["value"] for m in page["tables"]["metrics"]] == [1.0, 2.0]


def test_export_matches_what_the_page_shows(client, wh):
    page = client.get("/recipes/etl", params={"range": "24h", "format": "json"}).json()
    exported = client.get("/recipes/etl", params={
        "range": "custom", "from": page["window"]["start"], "to": page["window"]["end"],
        "format": "json", "table": "runs"}).json()
    assert [r["run_id"] for r in exported] == [r["run_id"] for r in page["tables"]["runs"]]
    assert len(exported) == len(wh.runs(recipe="etl", start="now-1d")) == 1
    query = {"range": "custom", "from": page["window"]["start"], "to": page["window"]["end"],
             "table": "runs"}
    parquet = client.get("/recipes/etl", params={**query, "format": "parquet"})
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert pd.read_parquet(io.BytesIO(parquet.content))["run_id"].astype(str).tolist() == [
        r["run_id"] for r in exported]
    xlsx = client.get("/recipes/etl", params={**query, "format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"  # a zip: the workbook
    sheet = pd.read_excel(io.BytesIO(xlsx.content))
    assert sheet["run_id"].tolist() == [r["run_id"] for r in exported]


def test_every_page_needs_a_login_once_users_exist(client, wh):
    accounts.add_user(wh, "ann", "viewer", "correct horse battery")
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    response = client.get("/recipes/etl?range=24h", headers=browser, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Frecipes%2Fetl%3Frange%3D24h"
    # Scripts and API clients get the API's answer, not a login page.
    refused = client.get("/?format=json", follow_redirects=False)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.get("/", headers={**browser, "Authorization": "Bearer nope"}).status_code == 401
    assert 'data-next="/"' in client.get("/login?next=//evil.example/").text
    login = client.post("/api/v1/auth/login", data={"name": "ann",
                                                     "password": "correct horse battery"})
    assert login.status_code == 200
    page = client.get("/metrics")
    assert page.status_code == 200 and "ann · viewer" in page.text
    assert "edit-control" not in page.text
    assert client.get("/static/plotly.min.js").headers["content-type"].startswith(
        "text/javascript")
    assert client.get("/static/app.js").status_code == 200


def test_an_empty_alerts_table_says_so_across_all_its_columns(client):
    page = client.get("/alerts")
    assert page.status_code == 200
    empty_rows = re.findall(r'<td class="empty"([^>]*)>None yet\.</td>', page.text)
    assert empty_rows  # no rules and no instances in this warehouse
    headers = [len(re.findall(r"<th>", head)) for head in
               re.findall(r"<thead>(.*?)</thead>", page.text, re.S)]
    assert [f' colspan="{n}"' for n in headers] == empty_rows


def test_alerts_page_lists_rules_and_silences_escaped(client, wh):
    wh.alerts.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": RECIPE,
                        "labels": {"team": "data"}})
    wh.alerts.add_silence({"recipe": RECIPE}, ends_at=pd.Timestamp.now(tz="UTC").to_pydatetime()
                          + pd.Timedelta(hours=1), author="ann", comment=HOSTILE)
    page = client.get("/alerts", params={"format": "json"}).json()
    assert [(r["name"], r["kind"], r["enabled"]) for r in page["tables"]["rules"]] == [
        ("etl_failed", "run_failed", "yes")]
    (silence,) = page["tables"]["silences"]
    assert silence["author"] == "ann" and silence["comment"] == HOSTILE
    assert RECIPE in silence["matchers"]
    html_page = client.get("/alerts").text
    assert "<h2>Silences</h2>" in html_page and HOSTILE not in html_page


def test_overview_is_loaded_once_per_change(client, wh, monkeypatch):
    """The Overview's two queries run once while nothing is written; a write (published on
    the change feed) makes the next request load again and show it."""
    queries = []
    real = wh.runs

    def runs(**kwargs):
        queries.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(wh, "runs", runs)
    first = client.get("/", params={"range": "24h", "format": "json"}).json()
    assert len(queries) == 2
    for _ in range(3):
        again = client.get("/", params={"range": "24h", "format": "json"}).json()
        assert again["tables"] == first["tables"]
    assert client.get("/", params={"range": "24h"}).status_code == 200  # the HTML: same data
    assert len(queries) == 2
    assert client.get("/", params={"range": "1h", "format": "json"}).status_code == 200
    assert len(queries) == 4  # another window is another page
    now = pd.Timestamp.now(tz="UTC")
    wh.write_runs(pd.DataFrame([{"run_id": str(uuid.uuid4()), "recipe": "fresh",
                                 "status": "running", "started_at": now}]))
    after = client.get("/", params={"range": "24h", "format": "json"}).json()
    assert len(queries) == 6
    assert "fresh" in [row["recipe"] for row in after["tables"]["recipes"]]


def test_remembered_page_data_ages_out():
    from warehouse.changes import Change, ChangeFeed
    from warehouse.server.pages.memo import MAX_AGE_S, PageMemo

    feed, now = ChangeFeed(), [0.0]
    memo = PageMemo(feed, clock=lambda: now[0])
    loads = []

    def load():
        loads.append(1)
        return {"n": len(loads)}

    assert memo.get_or_load(("k",), load) == {"n": 1}
    now[0] += MAX_AGE_S / 2
    assert memo.get_or_load(("k",), load) == {"n": 1}
    now[0] += MAX_AGE_S  # too old, though nothing changed: relative windows slide
    assert memo.get_or_load(("k",), load) == {"n": 2}
    feed.publish(Change("runs"))
    assert memo.get_or_load(("k",), load) == {"n": 3}
    assert memo.get_or_load(("other",), load) == {"n": 4}


def test_table_cells_show_numbers_as_people_read_them():
    from warehouse.server.pages.render import templates

    cell = templates.filters["cell"]
    assert [cell(v) for v in (78.06918773788128, 1748.625115, 1.0, None, 7, "x")] == [
        "78.07", "1,749", "1", "–", 7, "x"]
