"""``warehouse dashboards ...`` and ``warehouse export``: thin calls of ``wh.dashboards``
(:mod:`warehouse.dashboards`) and :mod:`warehouse.export` (docs/dashboards.md).

    warehouse dashboards list|show|create|edit|delete|history|restore|render|export|import|
                         export-grafana
    warehouse export QUERY|DASHBOARD --format csv|json|json-split|xlsx|parquet|html -o FILE
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from warehouse.cli.options import database_command, format_option, open_warehouse, parse_pairs
from warehouse.cli.output import note, show_frame, show_mapping

VAR = click.option("--var", "variables", multiple=True,
                   help="NAME=VALUE for a dashboard variable (repeatable), e.g. "
                        "--var recipe=etl-hourly --var start=now-7d.")


def _summary(stored) -> dict:
    return {"id": stored.id, "title": stored.title, "version": stored.version,
            "owner": stored.owner, "visibility": stored.visibility,
            "shared_with": ",".join(stored.shared_with), "panels": len(stored.document.panels),
            "updated_at": stored.updated_at}


def _read_json(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{path}: not JSON ({exc})") from None


@click.group("dashboards")
def dashboards_group() -> None:
    """Dashboards as data: stored documents, built-ins, rendering, sharing, Grafana."""


@dashboards_group.command("list")
@click.option("--built-in", "built_in", is_flag=True, help="List the built-in templates instead.")
@click.option("--user", default=None, help="Only dashboards this user may read.")
@click.option("--role", default=None, help="The user's role (viewer, editor, admin).")
@format_option
@database_command
@click.pass_context
def list_command(ctx, built_in, user, role, fmt) -> None:
    """Stored dashboards (or the built-in templates with --built-in)."""
    if built_in:
        import pandas as pd

        from warehouse.dashboards import templates

        frame = pd.DataFrame([{"id": d.id, "title": d.title, "panels": len(d.panels),
                               "variables": ",".join(v.name for v in d.variables)}
                              for d in templates()])
        show_frame(frame, fmt, title="built-in dashboards")
        return
    show_frame(open_warehouse(ctx).dashboards.list(user=user, role=role), fmt,
               title="dashboards")


@dashboards_group.command("show")
@click.argument("dashboard")
@click.option("--version", type=click.IntRange(min=1), default=None, help="An older version.")
@format_option
@database_command
@click.pass_context
def show_command(ctx, dashboard, version, fmt) -> None:
    """A stored dashboard (or built-in): its panels; --format json prints the document."""
    store = open_warehouse(ctx).dashboards
    if store.exists(dashboard):
        stored = store.get(dashboard, version)
        document, summary = stored.document, _summary(stored)
    else:
        document = store.resolve(dashboard)
        summary = {"id": document.id, "title": document.title, "version": None,
                   "panels": len(document.panels)}
    if fmt == "json":
        click.echo(json.dumps(document.to_json(), indent=2, ensure_ascii=False))
        return
    import pandas as pd

    show_mapping(summary, "table" if fmt == "table" else fmt)
    if fmt == "table":
        show_frame(pd.DataFrame([{"panel": p.id, "type": p.type, "query": p.query.kind,
                                  "x": p.grid.x, "y": p.grid.y, "w": p.grid.w, "h": p.grid.h,
                                  "title": p.title} for p in document.panels]), fmt,
                   title="panels")


@dashboards_group.command("create")
@click.option("--from-template", "template_name", default=None,
              help="Copy a built-in (performance-overview, resource-utilisation, "
                   "error-analysis, trend-analysis).")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A dashboard document (JSON).")
@click.option("--id", "dashboard_id", default=None, help="Id of the new dashboard.")
@click.option("--title", default=None, help="Title of the new dashboard.")
@click.option("--owner", default=None, help="Owner (a user name).")
@click.option("--visibility", type=click.Choice(["private", "shared", "public"]),
              default="private", show_default=True)
@click.option("--share", "shared_with", multiple=True,
              help="User name or role:NAME it is shared with (repeatable).")
@format_option
@database_command
@click.pass_context
def create_command(ctx, template_name, file, dashboard_id, title, owner, visibility,
                   shared_with, fmt) -> None:
    """Create a dashboard from a built-in, a JSON file, or empty (--id and --title)."""
    from warehouse.dashboards import builder

    store = open_warehouse(ctx, create=True).dashboards
    options = {"owner": owner, "visibility": visibility, "shared_with": list(shared_with)}
    if template_name and file:
        raise click.UsageError("give --from-template or --file, not both")
    if template_name:
        stored = store.create_from_template(template_name, dashboard_id=dashboard_id,
                                            title=title, **options)
    elif file:
        document = _read_json(file)
        document.update({k: v for k, v in (("id", dashboard_id), ("title", title)) if v})
        stored = store.create(document, **options)
    else:
        if not dashboard_id or not title:
            raise click.UsageError("an empty dashboard needs --id and --title")
        stored = store.create(builder.empty(dashboard_id, title), **options)
    show_mapping(_summary(stored), fmt, title="created")


def _grid(text: str) -> dict:
    panel, sep, numbers = text.partition("=")
    parts = numbers.split(",") if sep else []
    if not panel or len(parts) not in (2, 4) or not all(p.strip().isdigit() for p in parts):
        raise click.BadParameter(f"{text!r}: expected PANEL=X,Y or PANEL=X,Y,W,H",
                                 param_hint="--move-panel")
    values = [int(p) for p in parts]
    return {"panel": panel, **dict(zip(("x", "y", "w", "h"), values, strict=False))}


@dashboards_group.command("edit")
@click.argument("dashboard")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Replace the document with this JSON file (same id).")
@click.option("--title", default=None, help="New title.")
@click.option("--add-panel", "add_panels", multiple=True,
              type=click.Path(exists=True, dir_okay=False), help="Add the panel in this JSON file.")
@click.option("--replace-panel", "replace_panels", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Replace the panel with the same id by the one in this JSON file.")
@click.option("--remove-panel", "remove_panels", multiple=True, help="Remove a panel by id.")
@click.option("--move-panel", "moves", multiple=True,
              help="PANEL=X,Y or PANEL=X,Y,W,H on the 24-column grid.")
@click.option("--visibility", type=click.Choice(["private", "shared", "public"]), default=None)
@click.option("--share", "shared_with", multiple=True,
              help="Share with these users or role:NAME (replaces the list; repeatable).")
@click.option("--owner", default=None, help="Give the dashboard to another owner.")
@click.option("--author", default=None, help="Who made this edit (kept in the history).")
@format_option
@database_command
@click.pass_context
def edit_command(ctx, dashboard, file, title, add_panels, replace_panels, remove_panels, moves,
                 visibility, shared_with, owner, author, fmt) -> None:
    """Edit a dashboard: a new version (the old ones stay in its history)."""
    from warehouse.dashboards import builder

    store = open_warehouse(ctx).dashboards
    moves = [_grid(m) for m in moves]
    changes = bool(file or title or add_panels or replace_panels or remove_panels or moves)
    if not changes and visibility is None and not shared_with and owner is None:
        raise click.UsageError("nothing to change (see --help)")
    stored = store.get(dashboard)
    if changes:
        def change(document):
            if file:
                document = builder.parse(_read_json(file))
            if title:
                document = builder.retitle(document, title)
            for path in add_panels:
                document = builder.add_panel(document, _read_json(path))
            for path in replace_panels:
                panel = _read_json(path)
                document = builder.replace_panel(document, str(panel.get("id")), panel)
            for panel_id in remove_panels:
                document = builder.remove_panel(document, panel_id)
            for move in moves:
                document = builder.move_panel(document, move.pop("panel"), **move)
            return document

        stored = store.edit(dashboard, change, author=author)
    if visibility is not None or shared_with or owner is not None:
        stored = store.share(dashboard, visibility=visibility,
                             shared_with=list(shared_with) if shared_with else None, owner=owner)
    show_mapping(_summary(stored), fmt, title="saved")


@dashboards_group.command("delete")
@click.argument("dashboard")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@format_option
@database_command
@click.pass_context
def delete_command(ctx, dashboard, yes, fmt) -> None:
    """Delete a dashboard and its whole history."""
    store = open_warehouse(ctx).dashboards
    store.get(dashboard)
    if not yes:
        click.confirm(f"delete dashboard {dashboard!r} and its history?", abort=True, err=True)
    store.delete(dashboard)
    show_mapping({"id": dashboard, "deleted": True}, fmt)


@dashboards_group.command("history")
@click.argument("dashboard")
@format_option
@database_command
@click.pass_context
def history_command(ctx, dashboard, fmt) -> None:
    """Every saved version of a dashboard: version, author, time, title, panels."""
    show_frame(open_warehouse(ctx).dashboards.history(dashboard), fmt, title=dashboard)


@dashboards_group.command("restore")
@click.argument("dashboard")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--author", default=None, help="Who restored it (kept in the history).")
@format_option
@database_command
@click.pass_context
def restore_command(ctx, dashboard, version, author, fmt) -> None:
    """Save an old VERSION again as the newest one."""
    stored = open_warehouse(ctx).dashboards.restore(dashboard, version, author=author)
    show_mapping(_summary(stored), fmt, title=f"restored version {version}")


@dashboards_group.command("render")
@click.argument("dashboard")
@VAR
@click.option("--panel", "panels", multiple=True, help="Only these panels (repeatable).")
@click.option("--rows", type=click.IntRange(min=1), default=20, show_default=True,
              help="Rows shown per panel in table output.")
@format_option
@database_command
@click.pass_context
def render_command(ctx, dashboard, variables, panels, rows, fmt) -> None:
    """Render a stored or built-in dashboard: each panel's rows (or its error).

    --format json prints every panel with its Plotly figure; csv needs one --panel."""
    store = open_warehouse(ctx).dashboards
    result = store.render(dashboard, parse_pairs(variables, "--var"),
                          panels=list(panels) or None)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, allow_nan=False))
    elif fmt == "csv":
        if len(result.panels) != 1:
            raise click.UsageError("--format csv prints one panel: give --panel ID")
        panel = result.panels[0]
        if panel.error:
            raise click.ClickException(f"panel {panel.id!r}: {panel.error}")
        show_frame(panel.frame, fmt)
    else:
        for panel in result.panels:
            if panel.error:
                note(f"panel {panel.id!r} failed: {panel.error}")
            elif panel.type == "stat":
                click.echo(f"{panel.title}: {panel.value}")
            else:
                show_frame(panel.frame, fmt, title=panel.title, limit=rows)
        note(f"rendered {len(result.panels)} panel(s) in {result.elapsed_ms:.0f} ms")
    if result.errors:
        ctx.exit(1)


@dashboards_group.command("export")
@click.argument("dashboard")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The export file (JSON) to write.")
@format_option
@database_command
@click.pass_context
def export_command(ctx, dashboard, output, fmt) -> None:
    """Write a stored dashboard to a JSON file that `dashboards import` reads elsewhere."""
    payload = open_warehouse(ctx).dashboards.export(dashboard, output)
    show_mapping({"id": payload["id"], "version": payload["version"], "file": output}, fmt)


@dashboards_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--author", default=None, help="Who imported it (kept in the history).")
@format_option
@database_command
@click.pass_context
def import_command(ctx, file, author, fmt) -> None:
    """Import a dashboard export file: validated; unknown metrics and recipes are warned
    about; importing the same id and version again changes nothing."""
    result = open_warehouse(ctx, create=True).dashboards.import_(file, author=author)
    for warning in result.warnings:
        note(f"warning: {warning}")
    show_mapping({"id": result.id, "version": result.version, "status": result.status,
                  "warnings": len(result.warnings)}, fmt)


@dashboards_group.command("export-grafana")
@click.argument("dashboard")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Grafana dashboard JSON to write (default: DASHBOARD.grafana.json).")
@click.option("--provisioning", type=click.Path(dir_okay=False), default=None,
              help="Data source provisioning YAML to write (default: "
                   "warehouse-datasource.yaml beside the dashboard).")
@click.option("--datasource-uid", default="recipe-warehouse", show_default=True)
@click.option("--db-user", default=None, help="The read-only role Grafana logs in as.")
@format_option
@database_command
@click.pass_context
def export_grafana_command(ctx, dashboard, output, provisioning, datasource_uid, db_user,
                           fmt) -> None:
    """A Grafana dashboard over the PostgreSQL views, plus its data source file."""
    from warehouse.dashboards.grafana import grafana_dashboard, provisioning_yaml

    wh = open_warehouse(ctx)
    document = wh.dashboards.resolve(dashboard)
    output = Path(output or f"{document.id}.grafana.json")
    provisioning = Path(provisioning or output.with_name("warehouse-datasource.yaml"))
    board = grafana_dashboard(document, datasource_uid=datasource_uid)
    output.write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    provisioning.write_text(provisioning_yaml(wh.url, uid=datasource_uid, user=db_user),
                            encoding="utf-8")
    show_mapping({"dashboard": str(output), "provisioning": str(provisioning),
                  "panels": len(board["panels"])}, fmt)


EXPORT_FORMATS = ("csv", "json", "json-split", "xlsx", "parquet", "html")


@click.command("export")
@click.argument("target")
@click.option("--format", "file_format", type=click.Choice(EXPORT_FORMATS), default=None,
              help="File format (default: from the output file's suffix).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The file to write.")
@VAR
@click.option("--param", "params", multiple=True, help="NAME=VALUE bind for :NAME in QUERY.")
@click.option("--panel", default=None, help="Export one panel of the dashboard.")
@database_command
@click.pass_context
def export_command_top(ctx, target, file_format, output, variables, params, panel) -> None:
    """Export TARGET — a stored or built-in dashboard, or one read-only SQL query — to FILE.

    A dashboard goes to html (one self-contained report) or xlsx (a sheet per panel), or,
    with --panel, to any format; a query to csv, json, json-split, xlsx or parquet."""
    from warehouse import export
    from warehouse.dashboards import DashboardError

    wh = open_warehouse(ctx)
    fmt = file_format or export.format_of(output)
    try:
        document = wh.dashboards.resolve(target)
    except DashboardError:
        document = None
    if document is None:
        if fmt == "html":
            raise click.UsageError("html is for dashboards; export a query as csv, json, "
                                   "xlsx or parquet")
        rows = export.write(wh.sql(target, parse_pairs(params, "--param")), output, fmt)
        note(f"wrote {rows:,} rows to {output}")
        return
    result = wh.dashboards.render(document, parse_pairs(variables, "--var"),
                                  panels=[panel] if panel else None)
    for failed, error in result.errors.items():
        note(f"panel {failed!r} failed: {error}")
    if panel:
        only = result.panels[0]
        if only.error:
            raise click.ClickException(f"panel {panel!r}: {only.error}")
        rows = export.write(only.frame, output, fmt)
        note(f"wrote {rows:,} rows of panel {panel!r} to {output}")
        return
    from warehouse.dashboards.reports import html_report, xlsx_report

    if fmt == "html":
        size = html_report(result, output)
        note(f"wrote {output} ({size:,} bytes, opens offline)")
    elif fmt == "xlsx":
        rows = xlsx_report(result, output)
        note(f"wrote {output}: {len(result.panels)} panel sheets, {rows:,} rows")
    elif fmt == "json":
        Path(output).write_text(json.dumps(result.to_json(max_rows=10**6), ensure_ascii=False,
                                           allow_nan=False), encoding="utf-8")
        note(f"wrote {output}")
    else:
        raise click.UsageError(f"a whole dashboard exports as html, xlsx or json; use --panel "
                               f"for {fmt}")
    if result.errors:
        ctx.exit(1)


__all__ = ["dashboards_group", "export_command_top"]
