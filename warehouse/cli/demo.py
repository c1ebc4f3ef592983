"""``warehouse demo``: generate realistic recipe executions, load them and analyse them."""

from __future__ import annotations

import click

from warehouse.cli.options import database_command, open_warehouse
from warehouse.cli.output import console, progress_bar, spinner


@click.command()
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1, max=3650),
              help="Days of history to generate.")
@click.option("--seed", default=7, show_default=True)
@database_command
@click.pass_context
def demo(ctx: click.Context, days: int, seed: int) -> None:
    """Generate realistic recipe executions, load them and summarise what is there.

    Creates the warehouse if it does not exist yet; a second run writes nothing new.
    """
    from warehouse import demo as demo_data

    wh = open_warehouse(ctx, create=True)
    with spinner("generating demo data"):
        data = demo_data.generate(days, seed=seed)
    with progress_bar() as bar:
        task = bar.add_task("loading", total=3)
        written = {}
        for kind, writer, frame in (("runs", wh.write_runs, data.runs),
                                    ("steps", wh.write_steps, data.steps),
                                    ("points", wh.write_points, data.points)):
            written[kind] = writer(frame).written
            bar.advance(task)
    out = console()
    out.print(f"written: {written} (0 means it was already there)")
    rollups = wh.refresh_rollups()
    out.print(f"rollups refreshed: {rollups.rows:,} rows of points_1m/1h/1d "
              f"({rollups.status}; `warehouse jobs list` shows the schedule)")
    demo_data.summarize(wh, data, out)
