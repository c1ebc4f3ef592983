"""``warehouse init | info | sql | chunks | maintain``: the store itself."""

from __future__ import annotations

import click

from warehouse.cli.options import (
    database_command,
    effective_limit,
    format_option,
    limit_option,
    open_warehouse,
    parse_pairs,
)
from warehouse.cli.output import show_frame, show_mapping


@click.command()
@database_command
@format_option
@click.pass_context
def init(ctx: click.Context, fmt: str) -> None:
    """Create or upgrade the schema (alembic upgrade head); creates a new DuckDB file."""
    wh = open_warehouse(ctx, create=True, migrate=False)
    wh.migrate()
    if fmt == "table":
        click.echo(f"{wh!r} is at schema revision {wh.revision()}")
    else:
        from sqlalchemy.engine import make_url

        shown = make_url(wh.url).render_as_string(hide_password=True)
        show_mapping({"url": shown, "revision": wh.revision()}, fmt)


@click.command()
@database_command
@format_option
@click.pass_context
def info(ctx: click.Context, fmt: str) -> None:
    """Backend, schema revision, and rows, bytes and chunks per table.

    JSON: an object with backend, url, revision and tables (a list of rows); CSV: the
    table rows, with the backend and revision as columns.
    """
    details = open_warehouse(ctx).info()
    tables = details["tables"]
    if fmt == "json":
        from warehouse.cli.output import records, to_json

        click.echo(to_json({**details, "tables": records(tables)}))
    elif fmt == "csv":
        show_frame(tables.assign(backend=details["backend"], revision=details["revision"]), fmt)
    else:
        click.echo(f"backend {details['backend']}  {details['url']}  "
                   f"schema revision {details['revision']}")
        show_frame(tables, fmt)


@click.command("sql")
@click.argument("statement")
@click.option("--param", "params", multiple=True, help="NAME=VALUE bind for :NAME (repeatable).")
@limit_option()
@format_option
@database_command
@click.pass_context
def sql_command(ctx: click.Context, statement: str, params, limit, fmt: str) -> None:
    """Run one read-only SQL STATEMENT (tables and the views of docs/views.md).

    Statements that would write are refused. Binds: --param day=2026-11-25 for :day.
    """
    frame = open_warehouse(ctx).sql(statement, parse_pairs(params, "--param"))
    show_frame(frame, fmt, limit=effective_limit(limit, fmt))


@click.group()
def chunks() -> None:
    """Time chunks of the hypertables (points, runs, step_runs)."""


@chunks.command("show")
@click.argument("table", default="points")
@format_option
@database_command
@click.pass_context
def chunks_show(ctx: click.Context, table: str, fmt: str) -> None:
    """List the chunks of TABLE (default: points), oldest first."""
    show_frame(open_warehouse(ctx).show_chunks(table), fmt, title=table)


@chunks.command("drop")
@click.argument("table")
@click.option("--older-than", required=True,
              help="Drop chunks ending at or before this time (ISO-8601 with offset, now-90d).")
@click.option("--force", is_flag=True,
              help="Drop even chunks a retention policy says to archive first.")
@click.option("--dry-run", is_flag=True, help="List what would be dropped; drop nothing.")
@format_option
@database_command
@click.pass_context
def chunks_drop(ctx: click.Context, table: str, older_than: str, force: bool, dry_run: bool,
                fmt: str) -> None:
    """Drop whole chunks of TABLE older than a time."""
    import pandas as pd

    wh = open_warehouse(ctx)
    dropped = wh.drop_chunks(table, older_than, force=force, dry_run=dry_run)
    frame = dropped if isinstance(dropped, pd.DataFrame) else pd.DataFrame(
        {"chunk_name": list(dropped)}, dtype=object)
    if fmt == "table":
        verb = "would drop" if dry_run else "dropped"
        names = ", ".join(map(str, frame.iloc[:, 0])) if len(frame.columns) else ""
        click.echo(f"{verb} {len(frame)} chunk(s): {names or '-'}")
    else:
        show_frame(frame, fmt)


@chunks.command("interval")
@click.argument("table")
@click.argument("interval")
@format_option
@database_command
@click.pass_context
def chunks_interval(ctx: click.Context, table: str, interval: str, fmt: str) -> None:
    """Set the interval of chunks made from now on for TABLE (e.g. 1d, 7d)."""
    open_warehouse(ctx).set_chunk_interval(table, interval)
    if fmt == "table":
        click.echo(f"{table}: new chunks will span {interval}")
    else:
        show_mapping({"table": table, "chunk_interval": interval}, fmt)


@click.command()
@format_option
@database_command
@click.pass_context
def maintain(ctx: click.Context, fmt: str) -> None:
    """Create chunks ahead of time; move stray rows out of default partitions; refresh
    stale planner statistics (PostgreSQL)."""
    show_mapping(open_warehouse(ctx).maintain(), fmt)
