"""CLI for jobs, retention, archive and the scheduler. Thin: each command calls one method of
the Warehouse (so it works against a served warehouse too); run-due, install-pg-cron, the
scheduler and restore need the database itself and call :mod:`warehouse.jobs.api`:

    warehouse jobs list | run NAME | run-due | history | rollups | install-pg-cron
    warehouse scheduler
    warehouse retention set TABLE --keep 30d [--archive] [--metric NAME] | list | remove
    warehouse archive list | restore --from T --to T [--hold 7d]
    warehouse compress [--older-than 7d] | compress policy [--after 7d | --remove]
"""

from __future__ import annotations

import dataclasses

import click

from warehouse.cli.options import database_command, format_option, open_warehouse
from warehouse.cli.output import note, progress_bar, show_frame, show_mapping

NOW = click.option("--now", default=None,
                   help="The job's present instead of the wall clock (ISO time; backfills).")


def _api():
    from warehouse.jobs import api

    return api


def _line(run) -> str:
    return f"{run.job}: {run.status}, {run.rows} rows, {run.attempts} attempt(s), {run.seconds:.2f}s"


def _report(run) -> None:
    """One line per run on stdout; its error and notes on stderr."""
    click.echo(_line(run))
    for text in [run.error, *run.notes]:
        if text:
            note(f"  {text}")


def _runs_frame(runs):
    import pandas as pd

    return pd.DataFrame([dataclasses.asdict(r) for r in runs],
                        columns=[f.name for f in dataclasses.fields(_api().JobRun)])


@click.group("jobs")
def jobs_group() -> None:
    """Scheduled jobs: rollups, archive, retention (docs/jobs.md)."""


@jobs_group.command("list")
@format_option
@database_command
@click.pass_context
def jobs_list(ctx, fmt) -> None:
    """Registered jobs, their schedules, last start and next due time."""
    show_frame(open_warehouse(ctx).list_jobs(), fmt, title="jobs")


@jobs_group.command("run")
@click.argument("name")
@NOW
@click.option("--timeout", type=float, default=None, help="Seconds (default: the job's).")
@click.option("--retries", type=int, default=None, help="Retries of transient failures.")
@format_option
@database_command
@click.pass_context
def jobs_run(ctx, name, now, timeout, retries, fmt) -> None:
    """Run the job NAME now (exit status 1 unless it succeeded or was skipped)."""
    run = open_warehouse(ctx).run_job(name, now=now, timeout=timeout, retries=retries)
    if fmt == "table":
        _report(run)
    else:
        show_mapping(run, fmt)
    if run.status not in ("succeeded", "skipped"):
        ctx.exit(1)


@jobs_group.command("run-due")
@format_option
@database_command
@click.pass_context
def jobs_run_due(ctx, fmt) -> None:
    """Run every job that is due once, then exit (for system cron)."""
    runs = _api().run_due(open_warehouse(ctx))
    if fmt != "table":
        show_frame(_runs_frame(runs), fmt)
    elif not runs:
        click.echo("no job is due")
    for run in runs if fmt == "table" else ():
        _report(run)
    if any(r.status not in ("succeeded", "skipped") for r in runs):
        ctx.exit(1)


@jobs_group.command("history")
@click.option("--job", default=None, help="Only this job.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@format_option
@database_command
@click.pass_context
def jobs_history(ctx, job, limit, fmt) -> None:
    """Recent job runs, newest first (job_runs)."""
    show_frame(open_warehouse(ctx).job_runs(job, limit), fmt, title="job runs")


@jobs_group.command("rollups")
@format_option
@database_command
@click.pass_context
def jobs_rollups(ctx, fmt) -> None:
    """Rollup tiers: watermark, rows, pending invalidations."""
    show_frame(open_warehouse(ctx).rollup_state(), fmt, title="rollups")


@jobs_group.command("install-pg-cron")
@click.option("--remove", is_flag=True, help="Remove the schedules instead.")
@format_option
@database_command
@click.pass_context
def jobs_install_pg_cron(ctx, remove, fmt) -> None:
    """Schedule the SQL-only jobs inside PostgreSQL with pg_cron."""
    show_frame(_api().install_pg_cron(open_warehouse(ctx), remove=remove), fmt,
               title="pg_cron schedules")


@click.command("scheduler")
@click.option("--tick", default=1.0, show_default=True, help="Seconds between checks.")
@database_command
@click.pass_context
def scheduler_command(ctx, tick) -> None:
    """Run due jobs in the foreground until SIGINT/SIGTERM; stops cleanly."""
    from warehouse.jobs.scheduler import Scheduler

    wh = open_warehouse(ctx)
    note(f"scheduler running on {wh!r}; Ctrl-C stops it")
    Scheduler(wh, tick=tick, on_run=_report).run()
    note("scheduler stopped")


@click.group("retention")
def retention_group() -> None:
    """Retention policies (applied by the retention job)."""


@retention_group.command("set")
@click.argument("table")
@click.option("--keep", required=True, help="How long to keep, e.g. 30d.")
@click.option("--archive/--no-archive", default=False,
              help="Archive to Parquet (verified) before anything is dropped.")
@click.option("--metric", default=None, help="Only this metric of points (shorter keep).")
@format_option
@database_command
@click.pass_context
def retention_set(ctx, table, keep, archive, metric, fmt) -> None:
    """Keep TABLE (points, runs, step_runs) for --keep."""
    policy = open_warehouse(ctx).set_retention(table, keep, archive=archive, metric=metric)
    if fmt == "table":
        click.echo(f"{policy['table_name']}[{policy['metric']}]: keep {keep}"
                   f"{', archive first' if archive else ''}")
    else:
        show_mapping(policy, fmt)


@retention_group.command("list")
@format_option
@database_command
@click.pass_context
def retention_list(ctx, fmt) -> None:
    """Retention policies."""
    show_frame(open_warehouse(ctx).retention_policies(), fmt, title="retention policies")


@retention_group.command("remove")
@click.argument("table")
@click.option("--metric", default=None)
@format_option
@database_command
@click.pass_context
def retention_remove(ctx, table, metric, fmt) -> None:
    """Remove a retention policy."""
    found = open_warehouse(ctx).remove_retention(table, metric)
    if fmt == "table":
        click.echo("removed" if found else "no such policy")
    else:
        show_mapping({"table": table, "metric": metric, "removed": bool(found)}, fmt)


@click.group("archive")
def archive_group() -> None:
    """The Parquet archive (written by the archive job)."""


@archive_group.command("list")
@format_option
@database_command
@click.pass_context
def archive_list(ctx, fmt) -> None:
    """Archived units (archive_manifest)."""
    show_frame(open_warehouse(ctx).archive_manifest(), fmt, title="archive manifest")


@archive_group.command("restore")
@click.option("--from", "start", required=True, help="Start (ISO time, inclusive).")
@click.option("--to", "end", required=True, help="End (ISO time, exclusive).")
@click.option("--hold", default="7d", show_default=True,
              help="Keep the restored range hot this long before retention may drop it.")
@format_option
@database_command
@click.pass_context
def archive_restore(ctx, start, end, hold, fmt) -> None:
    """Bring archived points in [--from, --to) back into the hot table (idempotent)."""
    wh = open_warehouse(ctx)
    with progress_bar() as bar:
        task = bar.add_task("restoring archived units", total=None)
        counts = _api().restore_archive(wh, start, end, hold=hold,
                                progress=lambda done, total: bar.update(task, completed=done,
                                                                        total=total))
    if fmt == "table":
        click.echo(f"restored {counts['units']} unit(s): {counts['rows_inserted']} rows "
                   f"inserted of {counts['rows_read']} read")
    else:
        show_mapping(counts, fmt)


@click.group("compress", invoke_without_command=True)
@click.option("--older-than", default=None,
              help="Compress chunks that ended this long ago (default: the policy's age).")
@NOW
@format_option
@database_command
@click.pass_context
def compress_group(ctx, older_than, now, fmt) -> None:
    """Compress closed chunks of points now (PostgreSQL; DuckDB: nothing to do)."""
    if ctx.invoked_subcommand is not None:
        return
    from warehouse.jobs.compress import compress_now

    results = compress_now(open_warehouse(ctx), older_than, now=now)
    if fmt != "table":
        show_frame(_results_frame(results), fmt)
        return
    done = [r for r in results if not r.refused]
    rows, segments = sum(r.rows for r in done), sum(r.segments for r in done)
    if rows and not segments:  # DuckDB: rewritten in (series_id, ts) order, no segments
        click.echo(f"sorted {len(done)} chunk(s) by series: {rows} rows")
    else:
        click.echo(f"compressed {len(done)} chunk(s): {rows} rows into {segments} segments")
    for r in results:
        if r.refused:
            note(f"  {r.chunk_name}: {r.refused}")


def _results_frame(results):
    import pandas as pd

    from warehouse.jobs.compress import ChunkResult

    return pd.DataFrame([dataclasses.asdict(r) for r in results],
                        columns=[f.name for f in dataclasses.fields(ChunkResult)])


@compress_group.command("policy")
@click.option("--after", default=None, help="Compress chunks once they ended this long ago.")
@click.option("--remove", is_flag=True, help="Remove the policy.")
@format_option
@database_command
@click.pass_context
def compress_policy(ctx, after, remove, fmt) -> None:
    """Show, set (--after 7d) or remove (--remove) the compression policy."""
    from datetime import timedelta

    from warehouse.jobs import compress

    wh = open_warehouse(ctx)
    if remove:
        show_mapping({"table": "points", "removed": compress.remove_policy(wh)}, fmt)
        return
    if after is not None:
        compress.set_policy(wh, after)
    with wh.engine.connect() as conn:
        after_us = compress.policy_after_us(conn, wh.backend)
    show_mapping({"table": "points",
                  "compress_after": None if after_us is None else timedelta(microseconds=after_us)},
                 fmt)
