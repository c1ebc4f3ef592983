"""A dashboard as Grafana dashboard JSON over the PostgreSQL views, plus the data source
provisioning file, so Grafana users get the same panels in the Grafana they run.

Each panel's query becomes SQL for Grafana's PostgreSQL data source with its macros:
``$__timeFilter(col)`` for the dashboard's time range, ``$__timeGroupAlias(ts, $every)``
for buckets, ``$__timeFrom()``/``$__timeTo()`` where panel SQL binds ``:start``/``:end``;
the dashboard's other variables become Grafana template variables (``$recipe``). Analytics
panels (forecasts, trends...) are computed by the warehouse, not by SQL: they become a
text panel saying which command shows them.

Values from the document (metric names, filters) are written into the SQL as quoted
literals with quotes doubled; the SQL is for Grafana's read-only analyst role
(``warehouse grant analyst``)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from warehouse.backends.base import PERCENTILES
from warehouse.dashboards.buckets import AUTO, MAX_BUCKETS, WIDTHS
from warehouse.dashboards.checks import reference, replace_binds
from warehouse.dashboards.definition import VIEWS, Dashboard, Panel

DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE_UID = "recipe-warehouse"
SCHEMA_VERSION = 39
PANEL_TYPES = {"timeseries": "timeseries", "bar": "barchart", "table": "table", "stat": "stat",
               "heatmap": "heatmap", "gantt": "table"}
_AGG_SQL = {"mean": "avg(p.value)", "min": "min(p.value)", "max": "max(p.value)",
            "sum": "sum(p.value)", "count": "count(p.value)",
            "first": "(array_agg(p.value ORDER BY p.ts))[1]",
            "last": "(array_agg(p.value ORDER BY p.ts DESC))[1]",
            **{name: f"percentile_cont({q}) WITHIN GROUP (ORDER BY p.value)"
               for name, q in PERCENTILES.items()}}


def literal(value) -> str:
    """A SQL literal for a value from the document (or a Grafana variable reference)."""
    name = reference(value)
    if name is not None:
        return f"'${{{name}}}'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _datasource(uid: str) -> dict:
    return {"type": DATASOURCE_TYPE, "uid": uid}


def _points_sql(query) -> tuple[str, str]:
    aggs = query.agg if isinstance(query.agg, list) else [query.agg]
    conditions = [f"s.metric = {literal(query.metric)}"]
    for key, value in sorted(query.labels.items()):
        values = value if isinstance(value, list) else [value]
        name = f"s.labels ->> {literal(key)}"
        if len(values) == 1 and reference(values[0]) is not None:
            # an empty Grafana variable means "any" (as an unset variable does here)
            var = reference(values[0])
            conditions.append(f"('${{{var}}}' = '' OR {name} = '${{{var}}}')")
        else:
            conditions.append(f"{name} IN ({', '.join(literal(v) for v in values)})")
    conditions.append("$__timeFilter(p.ts)")
    every = "$every" if reference(query.every) else (query.every or "$__interval")
    series = ", ".join(f"s.labels ->> {literal(b)}" for b in (query.by or []))
    columns = [f"$__timeGroupAlias(p.ts, {every})"]
    if series:
        columns.append(f"concat_ws(',', {series}) AS metric")
    columns += [f"{_AGG_SQL[a]} AS {a if len(aggs) > 1 else 'value'}" for a in aggs]
    group = "1, 2" if series else "1"
    sql = (f"SELECT {', '.join(columns)}\nFROM all_points p JOIN series s ON s.series_id = "
           f"p.series_id\nWHERE {' AND '.join(conditions)}\nGROUP BY {group}\nORDER BY 1")
    return sql, "time_series" if series else "table"


def _runs_sql(query, table: str) -> tuple[str, str]:
    conditions = ["$__timeFilter(r.started_at)"]
    if query.recipe is not None:
        conditions.insert(0, f"r.recipe = {literal(query.recipe)}")
    if table == "runs":
        if query.status is not None:
            conditions.append(f"r.status = {literal(query.status)}")
        sql = ("SELECT r.started_at AS time, r.run_id, r.status, r.duration_us / 1e6 AS "
               "duration_s, r.error_type, r.error_message, r.host\nFROM runs r")
    else:
        if query.step is not None:
            conditions.append(f"s.step = {literal(query.step)}")
        sql = ("SELECT s.started_at AS time, s.run_id, s.step, s.attempt, s.status, "
               "s.duration_us / 1e6 AS duration_s, s.error_type\nFROM step_runs s JOIN runs r "
               "ON r.run_id = s.run_id")
    return f"{sql}\nWHERE {' AND '.join(conditions)}\nORDER BY 1", "table"


def _view_sql(query, panel: Panel) -> tuple[str, str]:
    _, time_column, is_date = VIEWS[query.view]
    columns = list(query.columns or VIEWS[query.view][0])
    x = panel.visual.x
    if panel.type == "timeseries" and x in columns:
        cast = f"CAST({x} AS timestamptz)" if is_date and x == time_column else x
        columns = [f"{cast} AS time" if c == x else c for c in columns]
    conditions = [f"{c} = {literal(v)}" for c, v in sorted(query.filters.items()) if v is not None]
    if time_column is not None and (query.start is not None or query.end is not None):
        conditions.append(f"{time_column} BETWEEN CAST($__timeFrom() AS date) AND "
                          f"CAST($__timeTo() AS date)" if is_date
                          else f"$__timeFilter({time_column})")
    sql = f"SELECT {', '.join(columns)}\nFROM {query.view}"
    if conditions:
        sql += f"\nWHERE {' AND '.join(conditions)}"
    if query.order_by:
        sql += f"\nORDER BY {', '.join(query.order_by)}"
    if query.limit:
        sql += f"\nLIMIT {int(query.limit)}"
    return sql, "table"


def _sql_sql(query, dashboard: Dashboard, panel: Panel) -> tuple[str, str]:
    def bind(name: str) -> str:
        if name == "start":
            return "$__timeFrom()"
        if name == "end":
            return "$__timeTo()"
        variable = dashboard.variable(name)
        if variable is not None and variable.type == "time":
            return f"CAST('${{{name}}}' AS timestamptz)"
        if variable is not None and variable.type == "number":
            return f"${{{name}}}"
        return f"'${{{name}}}'"

    sql = replace_binds(query.sql, bind)
    if panel.type == "timeseries" and panel.visual.x:
        sql = f"SELECT q.*, q.{panel.visual.x} AS time FROM (\n{sql}\n) AS q ORDER BY time"
    return sql, "table"


def grafana_panel(dashboard: Dashboard, panel: Panel, number: int, uid: str) -> dict:
    """One Grafana panel for ``panel``."""
    grid = {"x": panel.grid.x, "y": panel.grid.y, "w": panel.grid.w, "h": panel.grid.h}
    query = panel.query
    if query.kind == "analytics" and query.function == "slow_runs":
        # The same rows as the view the function reproduces (docs/views.md).
        sql = ("SELECT started_at, run_id, status, duration_ms, trailing_p95_ms, slowdown\n"
               f"FROM slow_runs\nWHERE recipe = {literal(query.recipe)} AND "
               f"$__timeFilter(started_at)\nORDER BY slowdown DESC"
               + (f"\nLIMIT {int(query.limit)}" if query.limit else ""))
        return _sql_panel(panel, number, uid, grid, sql, "table")
    if query.kind == "analytics":
        return {"id": number, "type": "text", "title": panel.title, "gridPos": grid,
                "options": {"mode": "markdown", "content": (
                    f"**{query.function}** is computed by the warehouse's analytics, not by "
                    f"SQL. See it with `warehouse dashboards render {dashboard.id} --panel "
                    f"{panel.id}`.")}}
    if query.kind == "points":
        sql, fmt = _points_sql(query)
    elif query.kind in ("runs", "steps"):
        sql, fmt = _runs_sql(query, query.kind)
    elif query.kind == "view":
        sql, fmt = _view_sql(query, panel)
    else:
        sql, fmt = _sql_sql(query, dashboard, panel)
    return _sql_panel(panel, number, uid, grid, sql, fmt)


def _sql_panel(panel: Panel, number: int, uid: str, grid: dict, sql: str, fmt: str) -> dict:
    out = {"id": number, "type": PANEL_TYPES[panel.type], "title": panel.title,
           "gridPos": grid, "datasource": _datasource(uid),
           "targets": [{"refId": "A", "datasource": _datasource(uid), "editorMode": "code",
                        "rawQuery": True, "rawSql": sql, "format": fmt}],
           "fieldConfig": {"defaults": {"unit": panel.visual.unit or ""}, "overrides": []},
           "options": {}}
    if panel.description:
        out["description"] = panel.description
    if panel.type == "stat":
        reducer = {"last": "lastNotNull", "first": "firstNotNull", "sum": "sum",
                   "mean": "mean", "min": "min", "max": "max", "count": "count"}
        out["options"] = {"reduceOptions": {"calcs": [reducer[panel.visual.reduce]],
                                            "fields": f"/^{panel.visual.value}$/",
                                            "values": False}}
    if panel.type == "bar":
        out["options"] = {"xField": panel.visual.x,
                          "stacking": "normal" if panel.visual.stacked else "none",
                          "orientation": "horizontal" if panel.visual.orientation == "h"
                          else "auto"}
    return out


def _template_variables(dashboard: Dashboard, uid: str) -> list[dict]:
    out = []
    for var in dashboard.variables:
        if var.type == "time" and var.name in ("start", "end"):
            continue  # Grafana's own time picker
        entry = {"name": var.name, "label": var.label or var.name, "hide": 0}
        if var.type == "recipe":
            entry.update(type="query", datasource=_datasource(uid), refresh=1,
                         query="SELECT recipe FROM recipes ORDER BY recipe",
                         definition="SELECT recipe FROM recipes ORDER BY recipe")
        elif var.type == "step":
            sql = ("SELECT DISTINCT s.step FROM step_runs s JOIN runs r ON r.run_id = s.run_id "
                   "WHERE r.recipe = '${recipe}' ORDER BY 1")
            entry.update(type="query", datasource=_datasource(uid), refresh=2, query=sql,
                         definition=sql, includeAll=False)
        elif var.type == "interval":
            # 'auto' maps to Grafana's own auto interval: the time range cut into about as
            # many buckets as the warehouse's render allows (buckets.py).
            entry.update(type="interval", query=",".join(WIDTHS), auto=var.default == AUTO,
                         auto_count=MAX_BUCKETS, auto_min=WIDTHS[0])
        else:
            entry.update(type="textbox", query="" if var.default is None else str(var.default))
        if var.default == AUTO and var.type == "interval":
            entry["current"] = {"text": AUTO, "value": f"$__auto_interval_{var.name}"}
        elif var.default is not None:
            entry["current"] = {"text": str(var.default), "value": str(var.default)}
        out.append(entry)
    return out


def _grafana_time(value) -> str:
    text = str(value) if value is not None else ""
    return text if text.startswith("now") else "now-7d"


def grafana_dashboard(dashboard: Dashboard, *, datasource_uid: str = DATASOURCE_UID) -> dict:
    """The Grafana dashboard JSON (import it, or provision it from a folder)."""
    start, end = dashboard.variable("start"), dashboard.variable("end")
    return {
        "uid": dashboard.id[:40], "title": dashboard.title.replace("${", "$").replace("}", ""),
        "description": dashboard.description or "", "tags": ["recipe-warehouse", *dashboard.tags],
        "timezone": "utc", "editable": True, "schemaVersion": SCHEMA_VERSION, "version": 1,
        "time": {"from": _grafana_time(start.default if start else None),
                 "to": _grafana_time(end.default if end else "now")},
        "templating": {"list": _template_variables(dashboard, datasource_uid)},
        "annotations": {"list": []},
        "panels": [grafana_panel(dashboard, p, i + 1, datasource_uid)
                   for i, p in enumerate(dashboard.panels)],
    }


def provisioning_yaml(url: str | None = None, *, uid: str = DATASOURCE_UID,
                      user: str | None = None) -> str:
    """Grafana's data source provisioning file for the warehouse's PostgreSQL database.

    Host, port and database come from ``url`` (a PostgreSQL URL) when given; the password
    is never written: Grafana reads it from ``$WAREHOUSE_GRAFANA_PASSWORD``. Use a read-only
    role (``warehouse grant analyst ROLE``)."""
    host, port, database, login = "localhost", 5432, "warehouse", user or "grafana_reader"
    if url and url.split(":", 1)[0].startswith("postgresql"):
        parsed = make_url(url)
        host, port = parsed.host or host, parsed.port or port
        database = parsed.database or database
        login = user or parsed.username or login

    def quoted(text) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "\n".join([
        "# Grafana data source for the Recipe Analytics Warehouse (PostgreSQL views).",
        "# Put in /etc/grafana/provisioning/datasources/; set WAREHOUSE_GRAFANA_PASSWORD.",
        "apiVersion: 1", "datasources:",
        "  - name: Recipe Warehouse", f"    type: {DATASOURCE_TYPE}", f"    uid: {uid}",
        f"    url: {quoted(f'{host}:{port}')}", f"    user: {quoted(login)}",
        "    jsonData:", f"      database: {quoted(database)}", "      sslmode: prefer",
        "      postgresVersion: 1500", "      timescaledb: false",
        "    secureJsonData:", "      password: $WAREHOUSE_GRAFANA_PASSWORD", "    editable: false",
        ""])


__all__ = ["DATASOURCE_TYPE", "grafana_dashboard", "grafana_panel", "literal",
           "provisioning_yaml"]
