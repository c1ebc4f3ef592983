"""The ``warehouse`` command.

Every command is listed once in :data:`COMMANDS` — by area, as ``"module:attribute"`` with
its one-line help — and imported only when it is invoked, so ``warehouse --help`` loads
click and nothing heavy (no pandas, SQLAlchemy, scipy or statsmodels). An area adds a
command by adding a line here and a module under ``warehouse/cli/`` (or its own package,
as the server does). Each command is thin: it calls one function of an area or the facade.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import click

from warehouse.cli.options import DEBUG_KEY, URL_HELP, URL_KEY, report_error


class Entry(NamedTuple):
    """One top-level command: its name, where it lives, its area and its short help."""

    name: str
    target: str  # "package.module:attribute"
    area: str
    help: str


COMMANDS: tuple[Entry, ...] = (
    Entry("init", "warehouse.cli.store:init", "store", "Create or upgrade the schema."),
    Entry("info", "warehouse.cli.store:info", "store",
          "Backend, schema revision; rows, bytes and chunks per table."),
    Entry("sql", "warehouse.cli.store:sql_command", "store",
          "Run one read-only SQL statement (tables and documented views)."),
    Entry("chunks", "warehouse.cli.store:chunks", "store",
          "Time chunks of the hypertables: show, drop, interval."),
    Entry("maintain", "warehouse.cli.store:maintain", "store",
          "Create chunks ahead of time; move stray default-partition rows."),
    Entry("ingest", "warehouse.cli.ingest:ingest", "ingest",
          "Load points from a CSV, Parquet or NDJSON file."),
    Entry("import", "warehouse.cli.ingest:import_group", "ingest",
          "Import past executions from trace files (wfcommons, runs)."),
    Entry("replay", "warehouse.cli.ingest:replay", "ingest",
          "Write what recorders spilled while the database was away."),
    Entry("stale", "warehouse.cli.ingest:stale", "ingest",
          "Runs left 'running' by a recorder that died."),
    Entry("query", "warehouse.cli.query:query", "query",
          "Points of a metric, raw or bucketed (default: the last 24 h)."),
    Entry("jobs", "warehouse.cli.jobs:jobs_group", "jobs",
          "Scheduled jobs: list, run, run-due, history, rollups, pg_cron."),
    Entry("retention", "warehouse.cli.jobs:retention_group", "jobs",
          "Retention policies: set, list, remove."),
    Entry("archive", "warehouse.cli.jobs:archive_group", "jobs",
          "The Parquet archive: list, restore."),
    Entry("compress", "warehouse.cli.jobs:compress_group", "jobs",
          "Compress closed chunks of points now; the compression policy."),
    Entry("scheduler", "warehouse.cli.jobs:scheduler_command", "jobs",
          "Run due jobs in the foreground until SIGINT/SIGTERM."),
    Entry("forecast", "warehouse.cli.analytics:forecast", "analytics",
          "Forecast a metric or recipe durations with prediction intervals."),
    Entry("anomalies", "warehouse.cli.analytics:anomalies", "analytics",
          "Anomalous points, each with a score and a reason."),
    Entry("trends", "warehouse.cli.analytics:trends", "analytics",
          "Slope per day with a confidence interval, and change points."),
    Entry("bottlenecks", "warehouse.cli.analytics:bottlenecks", "analytics",
          "Steps of a recipe ranked by how much they hold its runs back."),
    Entry("compare", "warehouse.cli.analytics:compare", "analytics",
          "Compare two recipes, or two periods of one."),
    Entry("alerts", "warehouse.cli.alerts:alerts_group", "alerts",
          "Alert rules: list, add, remove, test, silence, history."),
    Entry("dashboards", "warehouse.cli.dashboards:dashboards_group", "dashboards",
          "Dashboards: list, show, create, edit, render, history, export, import, Grafana."),
    Entry("export", "warehouse.cli.dashboards:export_command_top", "dashboards",
          "Export a dashboard (html, xlsx) or a query (csv, json, xlsx, parquet) to a file."),
    Entry("serve", "warehouse.server.commands:serve", "server",
          "Serve the HTTP API, dashboard and live updates."),
    Entry("users", "warehouse.server.auth_commands:users", "server",
          "Users of a served warehouse."),
    Entry("tokens", "warehouse.server.auth_commands:tokens", "server", "API tokens."),
    Entry("grant", "warehouse.server.auth_commands:grant", "server",
          "Database roles for analysts (PostgreSQL)."),
    Entry("demo", "warehouse.cli.demo:demo", "demo",
          "Generate, load and analyse realistic recipe executions."),
)


class LazyGroup(click.Group):
    """A group whose commands are imported on first use, listed by area in ``--help``;
    errors raised by a command become one line on stderr and exit status 1."""

    def __init__(self, *args, entries: tuple[Entry, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.entries = {entry.name: entry for entry in entries}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.entries, *sorted(set(self.commands) - set(self.entries))]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        entry = self.entries.get(name)
        if entry is None:
            return None
        module_name, _, attribute = entry.target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        self.commands[name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the registry, so that help imports no command module.
        areas: dict[str, list[tuple[str, str]]] = {}
        for entry in self.entries.values():
            areas.setdefault(entry.area, []).append((entry.name, entry.help))
        for name in sorted(set(self.commands) - set(self.entries)):
            areas.setdefault("other", []).append((name, self.commands[name].get_short_help_str()))
        for area, rows in areas.items():
            with formatter.section(f"Commands ({area})"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - every error becomes one line (or --debug)
            report_error(ctx, exc)


def _remember_group_option(key: str):
    def callback(ctx: click.Context, _param, value):
        if value:
            ctx.meta.setdefault(key, value)
        return value

    return callback


@click.group(cls=LazyGroup, entries=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="WAREHOUSE_URL", default=None, expose_value=False, help=URL_HELP,
              callback=_remember_group_option(URL_KEY))
@click.option("--debug", is_flag=True, envvar="WAREHOUSE_DEBUG", expose_value=False,
              help="Show the full traceback on error.",
              callback=_remember_group_option(DEBUG_KEY))
@click.version_option(package_name="recipe-analytics-warehouse", prog_name="warehouse")
def main() -> None:
    """Recipe Analytics Warehouse: record, store and analyse recipe executions.

    Every command that opens a database takes --url (or WAREHOUSE_URL); commands that
    print rows or a result take --format table|csv|json. Errors are one line; --debug
    shows the traceback.
    """


__all__ = ["COMMANDS", "Entry", "LazyGroup", "main"]
