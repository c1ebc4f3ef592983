"""Dashboard documents: validation names panel and field, templates are valid, the JSON
Schema in docs/dashboards.md is the one the code generates, builder edits stay valid."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from warehouse.dashboards import BUILT_IN, DashboardError, builder, json_schema, parse, template
from warehouse.dashboards.checks import sql_binds, sql_write_reason
from warehouse.dashboards.render import resolve_variables

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dashboards.md"


def doc(*panels, variables=None):
    return {"id": "t", "title": "T", "panels": list(panels),
            "variables": variables if variables is not None else [
                {"name": "recipe", "type": "recipe"},
                {"name": "start", "type": "time", "default": "now-1d"},
                {"name": "end", "type": "time", "default": "now"}]}


def panel(pid="p", type_="table", **query):
    return {"id": pid, "title": "x", "type": type_, "query": query}


def problems(document) -> list[str]:
    with pytest.raises(DashboardError) as info:
        parse(document)
    return info.value.problems


@pytest.mark.parametrize(("bad", "expected"), [
    (panel("p95", "timeseries", kind="points", metric="m", agg="p96"),
     "panel 'p95' field 'query.agg': unknown aggregate 'p96'"),
    (panel("q", "pie", kind="runs"), "panel 'q' field 'type': unknown panel type 'pie'"),
    (panel("q", kind="nope"), "panel 'q' field 'query': unknown query kind 'nope'"),
    (panel("q", kind="sql", sql="DELETE FROM runs"), "panel 'q' field 'query.sql': SQL must be "
                                                     "a query"),
    (panel("q", kind="sql", sql="WITH x AS (DELETE FROM runs RETURNING *) SELECT * FROM x"),
     "panel 'q' field 'query.sql': SQL that writes or changes state is refused: found DELETE"),
    (panel("q", kind="sql", sql="SELECT 1; DROP TABLE runs"),
     "panel 'q' field 'query.sql': SQL must be one statement"),
    (panel("q", kind="sql", sql="SELECT * FROM runs WHERE recipe = :recip"),
     "panel 'q' field 'query.sql': bind :recip is not a variable"),
    (panel("q", kind="runs", recipe="$nope"),
     "panel 'q' field 'query.recipe': unknown variable $nope"),
    (panel("q", kind="points", metric="m", every="banana"),
     "panel 'q' field 'query.every': bad interval 'banana'"),
    (panel("q", kind="view", view="step_stats", filters={"bad": 1}),
     "view step_stats has no column 'bad'"),
    (panel("q", kind="view", view="users"), "panel 'q' field 'query.view': unknown view 'users'"),
    ({**panel("q", "stat", kind="runs")}, "panel 'q': visual.value: a stat panel needs it"),
    ({**panel("q", kind="runs"), "grid": {"x": 20, "w": 8}},
     "panel 'q' field 'grid': x + w = 28 exceeds the 24 grid columns"),
    ({**panel("q", kind="runs"), "extra": 1}, "panel 'q' field 'extra': unknown field"),
    (panel("q", kind="analytics", function="forecast"),
     "forecast needs a metric or a recipe"),
])
def test_a_bad_panel_is_named_with_its_field(bad, expected):
    found = problems(doc(bad))
    assert any(expected in p for p in found), found
    assert len(found) == 1, found  # one problem, not one per branch of a union


def test_several_problems_are_all_reported_and_panels_named_by_position_without_id():
    found = problems(doc(panel("a", "pie", kind="runs"),
                         {"title": "x", "type": "table", "query": {"kind": "runs"}}))
    assert any(p.startswith("panel 'a' field 'type'") for p in found)
    assert any(p.startswith("panel #2 field 'id'") for p in found)


def test_duplicate_ids_and_variables_and_title_references():
    found = problems({**doc(panel("a", kind="runs"), panel("a", kind="runs"),
                            variables=[{"name": "recipe"}, {"name": "recipe"},
                                       {"name": "start", "type": "time"},
                                       {"name": "end", "type": "time"}]),
                      "title": "for ${nobody}"})
    assert "panel 'a': id used twice" in found
    assert "variable 'recipe': declared twice" in found
    assert any("field 'title': unknown variable $nobody" in p for p in found)


def test_not_json_and_not_an_object():
    with pytest.raises(DashboardError, match="not JSON"):
        parse("{nope")
    with pytest.raises(DashboardError, match="expected a JSON object"):
        parse("[1]")


@pytest.mark.parametrize("sql", [
    "SELECT 'delete from runs; drop' AS x", "select 1 as \"update\"",
    "SELECT * FROM runs -- drop table x\n", "WITH a AS (SELECT 1) SELECT * FROM a;",
])
def test_write_words_inside_literals_and_comments_are_not_writes(sql):
    assert sql_write_reason(sql) is None


def test_binds_skip_casts_and_literals():
    assert sql_binds("SELECT x::date, ':nope' FROM t WHERE a = :a AND b = :b OR a = :a") == [
        "a", "b"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_ins_are_valid_and_round_trip(name):
    dashboard = template(name)
    assert len(dashboard.panels) >= 5
    assert {v.name for v in dashboard.variables} >= {"recipe", "start", "end"}
    again = parse(json.loads(json.dumps(dashboard.to_json())))
    assert again.to_json() == dashboard.to_json()


def test_explicit_null_survives_the_round_trip():
    # "start": null means "no time filter", unlike an absent start (default "$start").
    dashboard = parse(doc(panel("q", kind="view", view="step_stats", start=None)))
    assert dashboard.to_json()["panels"][0]["query"]["start"] is None
    assert parse(dashboard.to_json()).panels[0].query.start is None


def test_variables_resolve_with_types_and_refuse_unknown_or_missing():
    dashboard = template("trend-analysis")
    values = resolve_variables(dashboard, {"recipe": "etl", "start": "2026-11-01T00:00Z"})
    assert values["recipe"] == "etl" and values["step"] is None
    assert str(values["start"]) == "2026-11-01 00:00:00+00:00"
    with pytest.raises(DashboardError, match="no variable 'recpe'"):
        resolve_variables(dashboard, {"recpe": "etl"})
    with pytest.raises(DashboardError, match="variable 'recipe' is required"):
        resolve_variables(dashboard, {})
    with pytest.raises(DashboardError, match="variable 'start'"):
        resolve_variables(dashboard, {"recipe": "etl", "start": "yesterday-ish"})
    with pytest.raises(DashboardError, match="variable 'every'"):
        resolve_variables(dashboard, {"recipe": "etl", "every": "soon"})


def test_builder_edits_return_valid_new_documents():
    base = builder.empty("mine", "Mine")
    added = builder.add_panel(base, {"id": "runs", "title": "Runs", "type": "table",
                                     "query": {"kind": "runs", "recipe": None}})
    added = builder.add_panel(added, {"id": "more", "title": "More", "type": "table",
                                      "query": {"kind": "runs", "recipe": None}})
    assert [p.id for p in added.panels] == ["runs", "more"] and base.panels == []
    assert added.panel("more").grid.y == 8  # placed below the first
    moved = builder.move_panel(added, "more", x=12, y=0)
    assert (moved.panel("more").grid.x, moved.panel("more").grid.y) == (12, 0)
    with pytest.raises(DashboardError, match="exceeds the 24 grid columns"):
        builder.move_panel(added, "more", x=20)
    assert [p.id for p in builder.remove_panel(moved, "runs").panels] == ["more"]
    with pytest.raises(DashboardError, match="no panel 'zzz'"):
        builder.remove_panel(moved, "zzz")
    replaced = builder.replace_panel(moved, "runs", {"id": "runs", "title": "R", "type": "bar",
                                                     "query": {"kind": "runs", "recipe": None},
                                                     "visual": {"x": "started_at"}})
    assert replaced.panel("runs").type == "bar" and replaced.panel("runs").grid.y == 0


def test_schema_is_generated_from_the_code_and_published_in_the_docs():
    schema = json_schema()
    panel_schema = schema["$defs"]["Panel"]["properties"]["type"]
    assert set(panel_schema["enum"]) == {"timeseries", "bar", "table", "stat", "heatmap", "gantt"}
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"<!-- schema:begin -->\s*```json\n(.*?)```\s*<!-- schema:end -->", text,
                      re.DOTALL)
    assert block, "docs/dashboards.md lacks the generated schema block"
    assert json.loads(block[1]) == schema, (
        "docs/dashboards.md is stale: python -m warehouse.dashboards.docs updates it")


def test_documents_are_not_mutated_by_parse():
    document = doc(panel("q", kind="runs"))
    before = copy.deepcopy(document)
    parse(document)
    assert document == before
