"""The ``warehouse`` command. Thin: each command calls one function of an area package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from warehouse.errors import WarehouseError

console = Console()
err_console = Console(stderr=True)


def _open(ctx: click.Context):
    from warehouse import Warehouse

    return Warehouse(ctx.obj.get("url"))


def show_frame(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    """Print a DataFrame as a rich table, CSV or JSON (records)."""
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso", date_unit="us"))
    else:
        table = Table(title=title, show_lines=False)
        for column in frame.columns:
            table.add_column(str(column), overflow="fold")
        for row in frame.itertuples(index=False, name=None):
            table.add_row(*["" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
                            for v in row])
        console.print(table)


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err_console, transient=False)


def _parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r}: expected NAME=VALUE", param_hint=what)
        key, value = pair.split("=", 1)
        out[key] = value
    return out


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
                      default="table", show_default=True, help="Output format.")


class _Group(click.Group):
    """Turns the warehouse's own errors into one clear line and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (WarehouseError, ValueError, FileNotFoundError, KeyError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            sys.exit(2)


@click.group(cls=_Group)
@click.option("--url", envvar="WAREHOUSE_URL", default=None,
              help="Database URL (default: WAREHOUSE_URL, else duckdb:///warehouse.duckdb).")
@click.pass_context
def main(ctx: click.Context, url: str | None) -> None:
    """Recipe Analytics Warehouse: record, store and analyse recipe executions."""
    ctx.ensure_object(dict)
    ctx.obj["url"] = url


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the schema (alembic upgrade head)."""
    from warehouse import Warehouse

    wh = Warehouse(ctx.obj.get("url"), migrate=False)
    wh.migrate()
    console.print(f"{wh!r} is at schema revision {wh.revision()}")


@main.command()
@FORMAT
@click.pass_context
def info(ctx: click.Context, fmt: str) -> None:
    """Backend, schema revision, and rows, bytes and chunks per table."""
    details = _open(ctx).info()
    if fmt == "json":
        details = {**details, "tables": details["tables"].to_dict(orient="records")}
        click.echo(json.dumps(details, default=str))
        return
    console.print(f"backend [bold]{details['backend']}[/bold]  {details['url']}  "
                  f"schema revision {details['revision']}")
    show_frame(details["tables"], fmt)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "file_fmt", type=click.Choice(["csv", "parquet", "ndjson"]),
              default=None, help="File format (default: from the extension).")
@click.option("--label-column", "label_columns", multiple=True,
              help="A column holding a label (repeatable); else a 'labels' JSON column.")
@click.option("--batch-rows", default=200_000, show_default=True)
@click.pass_context
def ingest(ctx, file: Path, file_fmt, label_columns, batch_rows) -> None:
    """Load points from a CSV, Parquet or NDJSON FILE (validated whole, then written)."""
    from warehouse.ingest.files import ingest_file

    wh = _open(ctx)
    with progress_bar() as bar:
        tasks = {}

        def report(phase, done, total):
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        result = ingest_file(wh, file, file_fmt, label_columns=label_columns,
                             batch_rows=batch_rows, progress=report)
    console.print(f"{result['rows']} rows read, {result['written']} written, "
                  f"{result['skipped']} already stored")


@main.command()
@click.argument("metric")
@click.option("--start", help="Start (ISO-8601 with offset, or now-7d).")
@click.option("--end", help="End, exclusive.")
@click.option("--label", "labels", multiple=True, help="NAME=VALUE filter (repeatable).")
@click.option("--every", help="Bucket width, e.g. 5m, 1h, 1d.")
@click.option("--agg", default="mean", show_default=True,
              type=click.Choice(["mean", "min", "max", "sum", "count", "first", "last",
                                 "p50", "p95", "p99"]))
@click.option("--by", help="Comma-separated label names to aggregate across series by.")
@click.option("--fill", type=click.Choice(["null", "previous", "linear", "zero"]))
@FORMAT
@click.pass_context
def query(ctx, metric, start, end, labels, every, agg, by, fill, fmt) -> None:
    """Points of METRIC, raw or bucketed."""
    frame = _open(ctx).points(
        metric, start, end, labels=_parse_pairs(labels, "--label") or None, every=every,
        agg=agg, by=[b for b in by.split(",") if b] if by is not None else None, fill=fill)
    show_frame(frame.drop(columns=["labels"], errors="ignore"), fmt, title=metric)


@main.command("sql")
@click.argument("statement")
@click.option("--param", "params", multiple=True, help="NAME=VALUE bind for :NAME.")
@FORMAT
@click.pass_context
def sql_command(ctx, statement, params, fmt) -> None:
    """Run one read-only SQL STATEMENT (views and tables)."""
    show_frame(_open(ctx).sql(statement, _parse_pairs(params, "--param")), fmt)


@main.group()
def chunks() -> None:
    """Time chunks of the hypertables (points, runs, step_runs)."""


@chunks.command("show")
@click.argument("table", default="points")
@FORMAT
@click.pass_context
def chunks_show(ctx, table, fmt) -> None:
    """List the chunks of TABLE."""
    show_frame(_open(ctx.find_root()).show_chunks(table), fmt, title=table)


@chunks.command("drop")
@click.argument("table")
@click.option("--older-than", required=True, help="Drop chunks ending at or before this time.")
@click.pass_context
def chunks_drop(ctx, table, older_than) -> None:
    """Drop whole chunks of TABLE older than a time."""
    dropped = _open(ctx.find_root()).drop_chunks(table, older_than)
    console.print(f"dropped {len(dropped)} chunk(s): {', '.join(dropped) or '-'}")


@chunks.command("interval")
@click.argument("table")
@click.argument("interval")
@click.pass_context
def chunks_interval(ctx, table, interval) -> None:
    """Set the interval of chunks made from now on for TABLE (e.g. 1d, 7d)."""
    _open(ctx.find_root()).set_chunk_interval(table, interval)
    console.print(f"{table}: new chunks will span {interval}")


@main.command()
@click.pass_context
def maintain(ctx) -> None:
    """Create chunks ahead of time; move stray rows out of default partitions."""
    console.print(_open(ctx).maintain())


@main.group("import")
def import_group() -> None:
    """Import past executions (runs and steps) from trace files."""


def _import(ctx: click.Context, kind: str, paths: tuple[str, ...]) -> None:
    from warehouse.importers.loader import expand, import_files

    wh = _open(ctx.find_root())
    files = expand(paths, "*.json" if kind == "wfcommons" else "*")
    with progress_bar() as bar:
        task = bar.add_task(f"importing {kind}", total=len(files))
        totals = import_files(wh, kind, files, progress=lambda _path: bar.advance(task))
    console.print(f"{totals['files']} file(s): {totals['runs']} runs and {totals['steps']} steps "
                  f"read; {totals['runs_written']} runs and {totals['steps_written']} steps "
                  f"written or updated")


@import_group.command("wfcommons")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def import_wfcommons(ctx, paths) -> None:
    """WfCommons WfFormat JSON files (or folders of them), schema 1.4 and 1.5."""
    _import(ctx, "wfcommons", paths)


@import_group.command("runs")
@click.argument("paths", nargs=-1, required=True)
@click.pass_context
def import_runs(ctx, paths) -> None:
    """Generic CSV/NDJSON files of runs and steps (columns in docs/importers.md)."""
    _import(ctx, "runs", paths)


@main.command()
@click.option("--spill-dir", envvar="WAREHOUSE_SPILL_DIR", default=None,
              help="Spill folder (default: WAREHOUSE_SPILL_DIR, else ./.warehouse-spill).")
@click.option("--all-targets", is_flag=True,
              help="Also replay records spilled for other databases into this one.")
@click.pass_context
def replay(ctx, spill_dir, all_targets) -> None:
    """Write records that recorders spilled while the database was unreachable."""
    from warehouse.recorder import replay_spill

    report = replay_spill(_open(ctx), spill_dir, all_targets=all_targets)
    console.print(report)
    if report.get("failed"):
        sys.exit(1)


@main.command("stale")
@click.option("--older-than", default="5m", show_default=True,
              help="Silent for longer than this.")
@FORMAT
@click.pass_context
def stale(ctx, older_than, fmt) -> None:
    """Runs still marked running whose recorder has not been heard from (crashed or killed)."""
    from warehouse.recorder import stale_runs

    runs = stale_runs(_open(ctx), older_than)
    if fmt == "table":
        runs = runs[["run_id", "recipe", "host", "started_at", "last_seen_at", "silent_for"]]
    show_frame(runs, fmt, title="stale runs")


@main.command()
@click.option("--days", default=30, show_default=True, help="Days of history to generate.")
@click.option("--seed", default=7, show_default=True)
@click.pass_context
def demo(ctx, days, seed) -> None:
    """Generate realistic recipe executions, load them and summarise what is there."""
    from warehouse import demo as demo_data

    wh = _open(ctx)
    with console.status("generating demo data"):
        data = demo_data.generate(days, seed=seed)
    with progress_bar() as bar:
        task = bar.add_task("loading", total=3)
        written = {}
        for kind, writer, frame in (("runs", wh.write_runs, data.runs),
                                    ("steps", wh.write_steps, data.steps),
                                    ("points", wh.write_points, data.points)):
            written[kind] = writer(frame).written
            bar.advance(task)
    console.print(f"written: {written} (0 means it was already there)")
    rollups = wh.refresh_rollups()
    console.print(f"rollups refreshed: {rollups.rows:,} rows of points_1m/1h/1d "
                  f"({rollups.status}; `warehouse jobs list` shows the schedule)")
    demo_data.summarize(wh, data, console)


def _register_areas() -> None:
    from warehouse.analytics.cli import register as register_analytics
    from warehouse.jobs.cli import register as register_jobs

    register_analytics(main)
    register_jobs(main)


_register_areas()

if __name__ == "__main__":
    main()
