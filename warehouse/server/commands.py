"""CLI commands of the server area (registered in the CLI's command list): ``serve``."""

from __future__ import annotations

import click

from warehouse.cli.options import command_url, database_command


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--max-body-mb", default=512, show_default=True, type=click.IntRange(min=1),
              help="Largest request body (one write batch) in MiB.")
@click.option("--sql-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a read-only SQL statement may run.")
@click.option("--jobs/--no-jobs", "run_jobs", default=None,
              help="Run due jobs (rollups, retention, archive) while serving. Default: on "
                   "for an embedded database, which no other process can open; off for "
                   "PostgreSQL (run `warehouse scheduler` or pg_cron there).")
@click.option("--alerts/--no-alerts", "run_alerts", default=None,
              help="Evaluate alert rules on every write and notify (docs/alerts.md). Default: "
                   "as --jobs; run one evaluator per database.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@database_command
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, max_body_mb: int, sql_timeout: float,
          run_jobs: bool | None, run_alerts: bool | None, log_level: str) -> None:
    """Serve the HTTP API, dashboard and live updates (owns an embedded database file).

    Other processes reach it with Warehouse("http://HOST:PORT") or WAREHOUSE_URL. Stops
    gracefully on SIGTERM or Ctrl-C: requests in flight finish, the database is closed.
    """
    import logging

    import uvicorn
    from sqlalchemy.engine import make_url

    from warehouse.backends.paths import announce_serving, database_file, withdraw_serving
    from warehouse.config import database_url
    from warehouse.core import Warehouse
    from warehouse.server import auth
    from warehouse.server.app import ServerSettings, create_app

    # The warehouse's own log lines (shutdown, listener, internal errors — passwords masked)
    # go where uvicorn's go, at the same level.
    logging.basicConfig(level=log_level.upper(), format="%(levelname)-9s %(name)s: %(message)s")
    url = database_url(command_url(ctx))
    if url.split("://", 1)[0].lower() in ("http", "https"):
        raise click.UsageError("warehouse serve serves a database: give its URL (duckdb:///... "
                               "or postgresql://...), not another server's")
    wh = Warehouse(url)
    try:
        refusal = auth.serving_allowed(wh, host)
    except Exception:
        wh.close()
        raise
    if refusal:
        wh.close()
        raise click.ClickException(refusal)
    settings = ServerSettings(max_body_bytes=max_body_mb * 1024 * 1024, sql_timeout=sql_timeout)
    if run_jobs is None:
        run_jobs = wh.backend.capabilities.single_writer
    app = create_app(wh, settings=settings, close_on_shutdown=True, listen_host=host,
                     run_jobs=run_jobs, run_alerts=run_jobs if run_alerts is None else run_alerts)
    shown = make_url(url).render_as_string(hide_password=True)
    click.echo(f"serving {shown} on http://{host}:{port} (API docs: /api/v1/docs)", err=True)
    # uvicorn handles SIGINT/SIGTERM: stops accepting, lets requests finish, then runs the
    # app's shutdown, which closes the Warehouse (and releases the DuckDB file).
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=15, server_header=False)
    # While we own an embedded file no other process can open it: a marker beside it lets
    # their error say where to go instead (port 0 picks a port we do not know here).
    db_file = database_file(wh.engine, wh.backend) if port else None
    if db_file is not None:
        announce_serving(db_file, f"http://{_local_address(host)}:{port}")

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM/SIGINT once shut down, so code after run() never runs:
        # the marker goes with the shutdown itself.
        async def shutdown(self, sockets=None):
            try:
                await super().shutdown(sockets)
            finally:
                if db_file is not None:
                    withdraw_serving(db_file)

    Server(config).run()


def _local_address(host: str) -> str:
    """How a process on this machine reaches a server listening on ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
