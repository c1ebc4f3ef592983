"""CLI commands of the server area (registered in the CLI's command list).

SKELETON: ``serve`` is filled in by the server work (issue 11).
"""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Serve the HTTP API, dashboard and live updates (owns an embedded database file)."""
    raise click.ClickException("warehouse serve is not built yet")
