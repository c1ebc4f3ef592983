"""``POST /api/v1/frames`` and ``RemoteWarehouse.write_frame`` (issue 15): a wide frame — a
row per label set and instant, a column per metric — written over HTTP exactly as
``/points`` is (JSON, NDJSON, Arrow IPC; ``label_columns``; role "write"; all or nothing;
the same problem+json), and read back equal through ``wh.frame`` and ``GET /frame``, on
DuckDB and PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.server.conftest import ThreadServer, clients_by_user
from tests.server.test_api import API, assert_problem, count
from warehouse import accounts
from warehouse.client import AccessDenied, RemoteWarehouse
from warehouse.client.wire import ARROW, NDJSON, table_to_arrow
from warehouse.errors import ValidationError
from warehouse.server.app import create_app

T0 = pd.Timestamp("2026-11-01T00:00:00Z")
START, END = "2026-10-01T00:00:00Z", "2026-12-01T00:00:00Z"
METRICS = ["cpu", "mem", "disk.io"]
PASSWORD = "correct horse battery staple"


def wide(host: str, n: int = 4) -> pd.DataFrame:
    """``n`` minutes of one host, three metrics, with missing cells in two of them."""
    return pd.DataFrame({
        "ts": pd.date_range(T0, periods=n, freq="1min"),
        "host": host,
        "cpu": np.arange(n, dtype=float) + 0.5,
        "mem": [None if i % 2 else float(10 * i) for i in range(n)],
        "disk.io": [-1.25 * i if i != 1 else np.nan for i in range(n)],
    })


def records(frame: pd.DataFrame) -> list[dict]:
    """``frame`` as JSON records: ISO-8601 times, a missing cell as null."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: (v.isoformat() if isinstance(v, pd.Timestamp)
                        else None if isinstance(v, float) and np.isnan(v) else v)
                    for k, v in row.items()})
    return out


def cells(frame: pd.DataFrame) -> int:
    """The points a wide frame holds: its present metric cells."""
    metrics = [c for c in frame.columns if c not in ("ts", "host", "run_id")]
    return int(frame[metrics].notna().sum().sum())


def assert_frame_read_back(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """``got`` (a frame answer) holds exactly the rows and values of ``expected``."""
    columns = ["ts", "host", *[m for m in METRICS if m in expected.columns]]
    got = got[columns].sort_values(["host", "ts"]).reset_index(drop=True)
    expected = expected[columns].sort_values(["host", "ts"]).reset_index(drop=True)
    assert got["ts"].tolist() == expected["ts"].tolist()
    assert got["host"].tolist() == expected["host"].tolist()
    for metric in columns[2:]:
        np.testing.assert_array_equal(got[metric].to_numpy(dtype=float),
                                      expected[metric].to_numpy(dtype=float), err_msg=metric)


def test_frames_in_json_ndjson_and_arrow_read_back_equal(client, app, wh):
    a, b, c = wide("a"), wide("b"), wide("c")
    feed = app.state.changes.subscribe()
    response = client.post(f"{API}/frames", json=records(a), params={"label_columns": "host"})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": cells(a), "written": cells(a), "skipped": 0}
    # the live dashboard and the alerts hear of it as of any write through the server
    change = feed.get(timeout=5)
    assert (change.kind, change.rows, sorted(change.metrics)) == ("points", cells(a),
                                                                  sorted(METRICS))
    # the same batch again: every point already stored
    again = client.post(f"{API}/frames", json=records(a), params={"label_columns": "host"})
    assert again.json() == {"received": cells(a), "written": 0, "skipped": cells(a)}
    lines = "\n".join(json.dumps(r) for r in records(b)) + "\n"
    response = client.post(f"{API}/frames", content=lines, params={"label_columns": "host"},
                           headers={"Content-Type": NDJSON})
    assert response.json()["written"] == cells(b), response.text
    table = pa.Table.from_pandas(c, preserve_index=False)  # NaN and None: Arrow nulls
    assert table.column("mem").null_count == 2
    response = client.post(f"{API}/frames", content=table_to_arrow(table),
                           params={"label_columns": "host"}, headers={"Content-Type": ARROW})
    assert response.json()["written"] == cells(c), response.text
    assert count(wh) == 3 * cells(a)
    everything = pd.concat([a, b, c], ignore_index=True)
    assert_frame_read_back(wh.frame(METRICS, START, END), everything)
    answer = client.get(f"{API}/frame", params={"metrics": ",".join(METRICS), "start": START,
                                                "end": END})
    assert answer.status_code == 200, answer.text
    served = pd.DataFrame(answer.json())
    served["ts"] = pd.to_datetime(served["ts"], utc=True)
    assert_frame_read_back(served, everything)


def test_a_big_json_frame_takes_the_vectorised_time_parse(client, wh):
    # 1500 rows (over zoned_times_parsed's threshold), times with an offset other than UTC
    n = 1500
    frame = pd.DataFrame({"ts": [(T0 + pd.Timedelta(seconds=i)).tz_convert("Etc/GMT-2")
                                 .isoformat() for i in range(n)],
                          "host": "h", "cpu": np.arange(n, dtype=float)})
    naive = frame.to_dict("records")
    naive[1234]["ts"] = "2026-11-01T00:20:34"
    body = assert_problem(client.post(f"{API}/frames", json=naive,
                                      params={"label_columns": "host"}), 422, "validation")
    assert {"row": 1234, "field": "ts"}.items() <= body["errors"][0].items()
    assert count(wh) == 0
    response = client.post(f"{API}/frames", json=frame.to_dict("records"),
                           params={"label_columns": "host"})
    assert response.json()["written"] == n, response.text
    got = wh.frame(["cpu"], START, END)
    assert got["ts"].tolist() == [T0 + pd.Timedelta(seconds=i) for i in range(n)]
    assert got["cpu"].tolist() == list(map(float, range(n)))


def test_bad_frames_are_the_problems_points_give(client, wh):
    rows = records(wide("a"))
    rows[2]["cpu"] = "not a number"
    body = assert_problem(client.post(f"{API}/frames", json=rows,
                                      params={"label_columns": "host"}), 422, "validation")
    assert {"row": 2, "field": "cpu"}.items() <= body["errors"][0].items()
    # the same shape /points answers for the same mistake
    point = [{"metric": "cpu", "labels": {"host": "a"}, "ts": T0.isoformat(),
              "value": "not a number"}]
    points_body = assert_problem(client.post(f"{API}/points", json=point), 422, "validation")
    assert set(body) == set(points_body)
    assert set(body["errors"][0]) == set(points_body["errors"][0])
    for bad, field in ((dict(ts="2026-11-01T00:00:00"), "ts"), (dict(ts="tomorrow"), "ts"),
                       (dict(cpu=True), "cpu"), (dict(run_id="nope"), "run_id"),
                       (dict(host=5), "labels"), (dict(host=""), "labels")):
        rows = records(wide("a"))
        rows[1].update(bad)
        body = assert_problem(client.post(f"{API}/frames", json=rows,
                                          params={"label_columns": "host"}), 422, "validation")
        assert any(e["row"] == 1 and e["field"] == field for e in body["errors"]), (bad, body)
    # columns: no ts, a label column the rows lack, a 'labels' object, no metric at all
    for rows, params, field in (([{"host": "a", "cpu": 1}], {"label_columns": "host"}, "ts"),
                                (records(wide("a")), {"label_columns": "region"},
                                 "label_columns"),
                                ([{"ts": T0.isoformat(), "labels": {"host": "a"}, "cpu": 1}], {},
                                 "labels"),
                                ([{"ts": T0.isoformat(), "host": "a"}],
                                 {"label_columns": "host"}, "(columns)")):
        body = assert_problem(client.post(f"{API}/frames", json=rows, params=params), 422,
                              "validation")
        assert field in {e["field"] for e in body["errors"]}, (rows, body)
    # bodies: malformed JSON, NDJSON and Arrow, not records, another media type
    assert_problem(client.post(f"{API}/frames", content=b"[{", headers={
        "Content-Type": "application/json"}), 422, "validation")
    body = assert_problem(client.post(f"{API}/frames", content=b'{"ts": "x"}\n{oops\n',
                                      headers={"Content-Type": NDJSON}), 422, "validation")
    assert body["errors"][0]["row"] == 1 and "line 2" in body["errors"][0]["message"]
    assert_problem(client.post(f"{API}/frames", content=b"garbage", headers={
        "Content-Type": ARROW}), 422, "validation")
    assert_problem(client.post(f"{API}/frames", json=[1, 2]), 422, "validation")
    assert_problem(client.post(f"{API}/frames", content=b"a,b", headers={
        "Content-Type": "text/csv"}), 415, "media-type")
    # an empty array has no columns at all, as for /points; no rows, or only missing cells,
    # are an empty write
    assert_problem(client.post(f"{API}/frames", json=[]), 422, "validation")
    assert_problem(client.post(f"{API}/points", json=[]), 422, "validation")
    empty = pa.table({"ts": pa.array([], pa.timestamp("us", "UTC")), "cpu": pa.array([], "f8")})
    nothing = {"received": 0, "written": 0, "skipped": 0}
    assert client.post(f"{API}/frames", content=table_to_arrow(empty),
                       headers={"Content-Type": ARROW}).json() == nothing
    assert client.post(f"{API}/frames", json=[{"ts": T0.isoformat(), "cpu": None}]).json() \
        == nothing
    assert count(wh) == 0 and count(wh, "series") == 0


def test_only_a_write_token_may_write_frames(wh):
    clients = clients_by_user(wh, {"vic": "viewer", "ed": "editor"}, PASSWORD)
    rows = records(wide("a"))
    assert_problem(clients["vic"].post(f"{API}/frames", json=rows,
                                       params={"label_columns": "host"}), 403)
    read_only = accounts.create_token(wh, "ed", "read").token
    assert_problem(clients["ed"].post(f"{API}/frames", json=rows,
                                      params={"label_columns": "host"},
                                      headers={"Authorization": f"Bearer {read_only}"}), 403)
    assert_problem(clients["ed"].post(f"{API}/frames", json=rows,
                                      params={"label_columns": "host"},
                                      headers={"Authorization": "Bearer wht_" + "A" * 43}), 401)
    assert count(wh) == 0
    response = clients["ed"].post(f"{API}/frames", json=rows, params={"label_columns": "host"})
    assert response.status_code == 200 and response.json()["written"] == cells(wide("a"))
    # and through the client: a viewer's token is refused as a PermissionError
    viewer = accounts.create_token(wh, "vic", "read").token
    with ThreadServer(create_app(wh, listen=False)) as server, \
            RemoteWarehouse(server.url, token=viewer) as remote:
        with pytest.raises(AccessDenied) as refused:
            remote.write_frame(wide("b"), label_columns=["host"])
        assert refused.value.status == 403
    assert count(wh) == cells(wide("a"))


#: Hostile text: quotes, SQL, NUL, newlines, format and bind markers, a very long name.
HOSTILE = ["x'; DROP TABLE points; --", 'a"b', "Robert'); DROP TABLE series;--", "a\nb",
           "a\r\nb", "a\x00b", "$1", ":name", "%s", "{0}", "\\", "\u202etxt", "ü·漢",
           "' OR '1'='1", "x" * 200, "x" * 201, "y" * 10_000]


def test_hostile_column_names_and_label_values_are_refused_or_kept_verbatim(client, wh):
    accepted = {"metric": [], "label name": [], "label value": []}
    for i, name in enumerate(HOSTILE):
        ts = (T0 + pd.Timedelta(minutes=i)).isoformat()
        # a hostile metric (column) name
        response = client.post(f"{API}/frames", json=[{"ts": ts, name: 1.0}])
        if response.status_code == 200:
            assert name in wh.sql("SELECT metric FROM series")["metric"].tolist()
            accepted["metric"].append(name)
        else:
            assert_problem(response, 422, "validation")
        # a hostile label column name, in the body and in label_columns (NUL there: 400)
        response = client.post(f"{API}/frames", json=[{"ts": ts, name: "v", "cpu": 1.0}],
                               params={"label_columns": name})
        if response.status_code == 200:
            accepted["label name"].append(name)
        else:
            assert_problem(response, 400 if "\x00" in name else 422)
        # a hostile label value: stored and read back verbatim, or refused
        response = client.post(f"{API}/frames", json=[{"ts": ts, "who": name, "evil": float(i)}],
                               params={"label_columns": "who"})
        if response.status_code == 200:
            got = wh.frame(["evil"], START, END, labels={"who": name})
            assert got["who"].tolist() == [name] and got["evil"].tolist() == [float(i)], name
            accepted["label value"].append(name)
        else:
            assert_problem(response, 422, "validation")
    # what each name rule lets through, and nothing executed: the tables hold exactly it
    assert accepted["metric"] == ["x" * 200]
    assert accepted["label name"] == []
    assert accepted["label value"] == [n for n in HOSTILE if len(n) <= 200 and "\x00" not in n]
    stored = len(accepted["metric"]) + len(accepted["label value"])
    assert count(wh, "points") == stored and count(wh, "series") == stored
    assert sorted(wh.frame(["evil"], START, END)["who"]) == sorted(accepted["label value"])


def test_oversized_frames_are_refused_whole(client, wh):
    # the fixture's limits: JSON 1 MB, any body 2 MB
    many = [{"ts": (T0 + pd.Timedelta(seconds=i)).isoformat(), "host": f"h{i % 7}",
             "cpu": float(i)} for i in range(20_000)]  # ~1.3 MB of JSON
    assert_problem(client.post(f"{API}/frames", json=many, params={"label_columns": "host"}),
                   413)
    lines = "\n".join(json.dumps(r) for r in many).encode()
    assert_problem(client.post(f"{API}/frames", content=lines, params={"label_columns": "host"},
                               headers={"Content-Type": NDJSON}), 413)
    big = pa.table({"ts": pa.array(np.arange(300_000), pa.timestamp("s", "UTC")),
                    "cpu": np.arange(300_000, dtype=float)})  # ~4.8 MB of Arrow
    assert_problem(client.post(f"{API}/frames", content=table_to_arrow(big),
                               headers={"Content-Type": ARROW}), 413)

    def chunks():  # no Content-Length: counted while it streams
        for _ in range(30):
            yield b" " * 100_000

    assert_problem(client.post(f"{API}/frames", content=chunks(), headers={
        "Content-Type": "application/json"}), 413)
    assert count(wh) == 0


def test_the_client_writes_frames_with_missing_cells_as_no_point(remote):
    wh, remote_wh = remote
    frame = wide("a", n=6)
    frame["mem"] = frame["mem"].astype("Float64")  # pandas' NA, not NaN
    frame["swap"] = pd.Series([None, 2.0, None, 4.0, None, 6.0], dtype=object)
    frame["idle"] = np.nan  # a metric with no value at all: no series
    result = remote_wh.write_frame(frame, label_columns=["host"])
    assert (result.received, result.written, result.skipped) == (cells(frame),) * 2 + (0,)
    assert count(wh, "series") == 4  # cpu, mem, disk.io and swap of host a
    metrics = [*METRICS, "swap"]
    direct, served = wh.frame(metrics, START, END), remote_wh.frame(metrics, START, END)
    pd.testing.assert_frame_equal(served, direct)
    expected = frame.assign(mem=frame["mem"].astype(float), swap=frame["swap"].astype(float))
    assert_frame_read_back(direct, expected)
    np.testing.assert_array_equal(direct["swap"].to_numpy(dtype=float),
                                  expected["swap"].to_numpy(dtype=float))
    # a frame of several hosts and a run id, as wh.frame answers it, written back again
    run_id = "4acc51f2-7645-5edd-ae08-a2f6da08ce21"
    second = pd.concat([wide("b"), wide("c")], ignore_index=True).assign(run_id=run_id)
    assert remote_wh.write_frame(second, label_columns=["host"]).written == cells(second)
    assert set(wh.sql("SELECT DISTINCT CAST(run_id AS VARCHAR) AS r FROM points "
                      "WHERE run_id IS NOT NULL")["r"]) == {run_id}
    assert remote_wh.write_frame(remote_wh.frame(METRICS, START, END),
                                 label_columns=["host"]).written == 0


def test_the_client_names_the_bad_row_and_column(remote):
    wh, remote_wh = remote
    frame = wide("a")
    frame["cpu"] = pd.Series([1.0, "oops", 3.0, 4.0], dtype=object)  # Arrow cannot type it
    with pytest.raises(ValidationError) as refused:
        remote_wh.write_frame(frame, label_columns=["host"])
    assert [(p.row, p.field) for p in refused.value.problems] == [(1, "cpu")]
    naive = wide("a")
    naive["ts"] = naive["ts"].dt.tz_localize(None)
    with pytest.raises(ValidationError) as refused:
        remote_wh.write_frame(naive, label_columns=["host"])
    assert {p.field for p in refused.value.problems} == {"ts"}
    with pytest.raises(ValidationError) as refused:
        remote_wh.write_frame(wide("a").assign(cpu=np.inf), label_columns=["host"])
    assert {p.field for p in refused.value.problems} == {"cpu"}
    # Integers wider than 64 bits: Arrow cannot carry them, JSON lines can; an infinite value
    # beside them is refused as a direct write refuses it, not sent as null (no point).
    wider = wide("a").assign(big=pd.Series([2**70, 1, 2, 3], dtype=object))
    with pytest.raises(ValidationError) as refused:
        remote_wh.write_frame(wider.assign(cpu=[1.0, np.inf, 2.0, 3.0]), label_columns=["host"])
    assert [(p.row, p.field) for p in refused.value.problems] == [(1, "cpu")]
    assert count(wh) == 0
    assert remote_wh.write_frame(wider, label_columns=["host"]).written == cells(wider)
    assert wh.points("big")["value"].tolist() == [2.0**70, 1, 2, 3]


def test_openapi_documents_frames(client):
    schema = client.get(f"{API}/openapi.json").json()
    post = schema["paths"]["/api/v1/frames"]["post"]
    content = post["requestBody"]["content"]
    assert set(content) >= {"application/json", NDJSON, ARROW}
    record = content["application/json"]["schema"]["items"]
    assert record["required"] == ["ts"]
    kinds = record["additionalProperties"]["anyOf"]
    assert {"type": ["number", "null"]}.items() <= kinds[0].items()
    assert "label_columns" in {p["name"] for p in post["parameters"]}
