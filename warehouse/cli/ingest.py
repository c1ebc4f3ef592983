"""``warehouse ingest | import | replay | stale``: data coming in."""

from __future__ import annotations

from pathlib import Path

import click

from warehouse.cli.options import database_command, format_option, open_warehouse
from warehouse.cli.output import note, progress_bar, show_frame, show_mapping


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--file-format", "file_fmt", type=click.Choice(["csv", "parquet", "ndjson"]),
              default=None, help="Format of FILE (default: from its extension).")
@click.option("--label-column", "label_columns", multiple=True,
              help="A column holding a label (repeatable); else a 'labels' JSON column.")
@click.option("--batch-rows", default=200_000, show_default=True, type=click.IntRange(min=1))
@format_option
@database_command
@click.pass_context
def ingest(ctx: click.Context, file: Path, file_fmt, label_columns, batch_rows, fmt) -> None:
    """Load points from a CSV, Parquet or NDJSON FILE (validated whole, then written).

    Creates the warehouse if it does not exist yet. Re-running is safe: points already
    stored are skipped.
    """
    from warehouse.ingest.files import ingest_file

    wh = open_warehouse(ctx, create=True)
    with progress_bar() as bar:
        tasks: dict[str, object] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        result = ingest_file(wh, file, file_fmt, label_columns=label_columns,
                             batch_rows=batch_rows, progress=report)
    if fmt == "table":
        click.echo(f"{result['rows']} rows read, {result['written']} written, "
                   f"{result['skipped']} already stored")
    else:
        show_mapping(result, fmt)


@click.group("import")
def import_group() -> None:
    """Import past executions (runs and steps) from trace files."""


def _import(ctx: click.Context, kind: str, paths: tuple[str, ...], fmt: str) -> None:
    from warehouse.importers.loader import expand, import_files

    files = expand(paths, "*.json" if kind == "wfcommons" else "*")
    wh = open_warehouse(ctx, create=True)
    with progress_bar() as bar:
        task = bar.add_task(f"importing {kind}", total=len(files))
        totals = import_files(wh, kind, files, progress=lambda _path: bar.advance(task))
    if fmt == "table":
        click.echo(f"{totals['files']} file(s): {totals['runs']} runs and {totals['steps']} "
                   f"steps read; {totals['runs_written']} runs and {totals['steps_written']} "
                   f"steps written or updated")
    else:
        show_mapping(totals, fmt)


@import_group.command("wfcommons")
@click.argument("paths", nargs=-1, required=True)
@format_option
@database_command
@click.pass_context
def import_wfcommons(ctx: click.Context, paths, fmt) -> None:
    """WfCommons WfFormat JSON files (or folders of them), schema 1.4 and 1.5."""
    _import(ctx, "wfcommons", paths, fmt)


@import_group.command("runs")
@click.argument("paths", nargs=-1, required=True)
@format_option
@database_command
@click.pass_context
def import_runs(ctx: click.Context, paths, fmt) -> None:
    """Generic CSV/NDJSON files of runs and steps (columns in docs/importers.md)."""
    _import(ctx, "runs", paths, fmt)


@click.command()
@click.option("--spill-dir", envvar="WAREHOUSE_SPILL_DIR", default=None,
              help="Spill folder (default: WAREHOUSE_SPILL_DIR, else ./.warehouse-spill).")
@click.option("--all-targets", is_flag=True,
              help="Also replay records spilled for other databases into this one.")
@click.option("--rejected", is_flag=True,
              help="Retry the files set aside as rejected (*.rejected) too.")
@format_option
@database_command
@click.pass_context
def replay(ctx: click.Context, spill_dir, all_targets, rejected, fmt) -> None:
    """Write records that recorders spilled while the database was unreachable.

    Exit status 1 when a file could not be replayed (it stays for the next replay).
    """
    from warehouse.recorder import replay_spill

    wh = open_warehouse(ctx, create=True)
    with progress_bar() as bar:
        task = bar.add_task("replaying spill files", total=None)
        report_ = replay_spill(wh, spill_dir, all_targets=all_targets, rejected=rejected,
                               progress=lambda done, total: bar.update(task, completed=done,
                                                                       total=total))
    failed = report_.get("failed") or []
    if fmt == "table":
        show_mapping({k: v for k, v in report_.items() if k != "failed"}, fmt)
        for problem in failed:
            note(f"failed: {problem.get('file')}: {problem.get('error')}")
    else:
        show_mapping(report_, fmt)
    if failed:
        ctx.exit(1)


@click.command("stale")
@click.option("--older-than", default="5m", show_default=True,
              help="Silent for longer than this.")
@click.option("--recipe", default=None, help="Only runs of this recipe.")
@format_option
@database_command
@click.pass_context
def stale(ctx: click.Context, older_than: str, recipe: str | None, fmt: str) -> None:
    """Runs still marked running whose recorder has not been heard from (crashed or killed)."""
    from warehouse.recorder import stale_runs

    runs = stale_runs(open_warehouse(ctx), older_than, recipe=recipe)
    if fmt == "table":
        runs = runs[["run_id", "recipe", "host", "started_at", "last_seen_at", "silent_for"]]
    show_frame(runs, fmt, title="stale runs")
