"""CLI for jobs, retention, archive and the scheduler. Thin: each command calls one function
of :mod:`warehouse.jobs.api`. Registered on the main group by :func:`register`:

    warehouse jobs list | run NAME | run-due | history | rollups | install-pg-cron
    warehouse scheduler
    warehouse retention set TABLE --keep 30d [--archive] [--metric NAME] | list | remove
    warehouse archive list | restore --from T --to T [--hold 7d]
"""

from __future__ import annotations

import sys

import click

FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
                      default="table", show_default=True, help="Output format.")
NOW = click.option("--now", default=None,
                   help="The job's present instead of the wall clock (ISO time; backfills).")


def _wh(ctx: click.Context):
    from warehouse import Warehouse

    return Warehouse((ctx.obj or {}).get("url"))


def _show(frame, fmt: str, title: str | None = None) -> None:
    from warehouse.cli import show_frame

    show_frame(frame, fmt, title)


def _api():
    from warehouse.jobs import api

    return api


def _report(run) -> None:
    line = f"{run.job}: {run.status}, {run.rows} rows, {run.attempts} attempt(s), {run.seconds:.2f}s"
    click.echo(line)
    for note in [run.error, *run.notes]:
        if note:
            click.echo(f"  {note}", err=True)


@click.group("jobs")
def jobs_group() -> None:
    """Scheduled jobs: rollups, archive, retention (docs/jobs.md)."""


@jobs_group.command("list")
@FORMAT
@click.pass_context
def jobs_list(ctx, fmt) -> None:
    """Registered jobs, their schedules, last start and next due time."""
    _show(_api().list_jobs(_wh(ctx)), fmt, "jobs")


@jobs_group.command("run")
@click.argument("name")
@NOW
@click.option("--timeout", type=float, default=None, help="Seconds (default: the job's).")
@click.option("--retries", type=int, default=None, help="Retries of transient failures.")
@click.pass_context
def jobs_run(ctx, name, now, timeout, retries) -> None:
    """Run the job NAME now (exit status 1 unless it succeeded or was skipped)."""
    run = _api().run(_wh(ctx), name, now=now, timeout=timeout, retries=retries)
    _report(run)
    if run.status not in ("succeeded", "skipped"):
        sys.exit(1)


@jobs_group.command("run-due")
@click.pass_context
def jobs_run_due(ctx) -> None:
    """Run every job that is due once, then exit (for system cron)."""
    runs = _api().run_due(_wh(ctx))
    if not runs:
        click.echo("no job is due")
    for run in runs:
        _report(run)
    if any(r.status not in ("succeeded", "skipped") for r in runs):
        sys.exit(1)


@jobs_group.command("history")
@click.option("--job", default=None, help="Only this job.")
@click.option("--limit", default=50, show_default=True)
@FORMAT
@click.pass_context
def jobs_history(ctx, job, limit, fmt) -> None:
    """Recent job runs, newest first (job_runs)."""
    _show(_api().job_runs(_wh(ctx), job, limit), fmt, "job runs")


@jobs_group.command("rollups")
@FORMAT
@click.pass_context
def jobs_rollups(ctx, fmt) -> None:
    """Rollup tiers: watermark, rows, pending invalidations."""
    _show(_api().rollup_state(_wh(ctx)), fmt, "rollups")


@jobs_group.command("install-pg-cron")
@click.option("--remove", is_flag=True, help="Remove the schedules instead.")
@FORMAT
@click.pass_context
def jobs_install_pg_cron(ctx, remove, fmt) -> None:
    """Schedule the SQL-only jobs inside PostgreSQL with pg_cron."""
    _show(_api().install_pg_cron(_wh(ctx), remove=remove), fmt, "pg_cron schedules")


@click.command("scheduler")
@click.option("--tick", default=1.0, show_default=True, help="Seconds between checks.")
@click.pass_context
def scheduler_command(ctx, tick) -> None:
    """Run due jobs in the foreground until SIGINT/SIGTERM; stops cleanly."""
    from warehouse.jobs.scheduler import Scheduler

    wh = _wh(ctx)
    click.echo(f"scheduler running on {wh!r}; Ctrl-C stops it", err=True)
    Scheduler(wh, tick=tick, on_run=_report).run()
    wh.close()
    click.echo("scheduler stopped", err=True)


@click.group("retention")
def retention_group() -> None:
    """Retention policies (applied by the retention job)."""


@retention_group.command("set")
@click.argument("table")
@click.option("--keep", required=True, help="How long to keep, e.g. 30d.")
@click.option("--archive/--no-archive", default=False,
              help="Archive to Parquet (verified) before anything is dropped.")
@click.option("--metric", default=None, help="Only this metric of points (shorter keep).")
@click.pass_context
def retention_set(ctx, table, keep, archive, metric) -> None:
    """Keep TABLE (points, runs, step_runs) for --keep."""
    policy = _api().set_retention(_wh(ctx), table, keep, archive=archive, metric=metric)
    click.echo(f"{policy['table_name']}[{policy['metric']}]: keep {keep}"
               f"{', archive first' if archive else ''}")


@retention_group.command("list")
@FORMAT
@click.pass_context
def retention_list(ctx, fmt) -> None:
    """Retention policies."""
    _show(_api().retention_policies(_wh(ctx)), fmt, "retention policies")


@retention_group.command("remove")
@click.argument("table")
@click.option("--metric", default=None)
@click.pass_context
def retention_remove(ctx, table, metric) -> None:
    """Remove a retention policy."""
    found = _api().remove_retention(_wh(ctx), table, metric)
    click.echo("removed" if found else "no such policy")


@click.group("archive")
def archive_group() -> None:
    """The Parquet archive (written by the archive job)."""


@archive_group.command("list")
@FORMAT
@click.pass_context
def archive_list(ctx, fmt) -> None:
    """Archived units (archive_manifest)."""
    _show(_api().archive_manifest(_wh(ctx)), fmt, "archive manifest")


@archive_group.command("restore")
@click.option("--from", "start", required=True, help="Start (ISO time, inclusive).")
@click.option("--to", "end", required=True, help="End (ISO time, exclusive).")
@click.option("--hold", default="7d", show_default=True,
              help="Keep the restored range hot this long before retention may drop it.")
@click.pass_context
def archive_restore(ctx, start, end, hold) -> None:
    """Bring archived points in [--from, --to) back into the hot table (idempotent)."""
    counts = _api().restore(_wh(ctx), start, end, hold=hold)
    click.echo(f"restored {counts['units']} unit(s): {counts['rows_inserted']} rows inserted "
               f"of {counts['rows_read']} read")


COMMANDS = (jobs_group, scheduler_command, retention_group, archive_group)


def register(group: click.Group) -> click.Group:
    """Add the jobs, scheduler, retention and archive commands to ``group`` (idempotent)."""
    for command in COMMANDS:
        if command.name not in group.commands:
            group.add_command(command)
    return group
