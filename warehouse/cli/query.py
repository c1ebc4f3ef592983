"""``warehouse query METRIC``: points of one metric, raw or bucketed."""

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
from warehouse.cli.output import note, show_frame

#: The window a query reads when no --start is given: a day, never the whole history.
DEFAULT_WINDOW = "24h"
AGGREGATES = ["mean", "min", "max", "sum", "count", "first", "last", "p50", "p95", "p99"]


def window(start: str | None, end: str | None):
    """(start, end) to read: ``start`` defaults to DEFAULT_WINDOW before ``end`` (or now)."""
    if start is not None:
        return start, end
    import pandas as pd

    from warehouse.timeparse import aware_timestamp, interval_us

    until = aware_timestamp(end, "--end") if end is not None else pd.Timestamp.now(tz="UTC")
    return until - pd.Timedelta(microseconds=interval_us(DEFAULT_WINDOW)), until


@click.command()
@click.argument("metric")
@click.option("--start", help=f"Start, inclusive: ISO-8601 with an offset, or now-7d "
                              f"(default: {DEFAULT_WINDOW} before --end).")
@click.option("--end", help="End, exclusive (default: now).")
@click.option("--label", "labels", multiple=True, help="NAME=VALUE filter (repeatable).")
@click.option("--every", help="Bucket width, e.g. 5m, 1h, 1d (default: raw points).")
@click.option("--agg", default="mean", show_default=True, type=click.Choice(AGGREGATES))
@click.option("--by", help="Comma-separated label names to aggregate across series by.")
@click.option("--fill", type=click.Choice(["null", "previous", "linear", "zero"]),
              help="Add the empty buckets, filled this way.")
@limit_option()
@format_option
@database_command
@click.pass_context
def query(ctx: click.Context, metric, start, end, labels, every, agg, by, fill, limit,
          fmt) -> None:
    """Points of METRIC in [--start, --end), raw or bucketed with --every and --agg.

    Without --start the last 24 hours are read. Table output shows 1000 rows unless
    --limit says otherwise; csv and json print every row.
    """
    default_window = start is None
    start, end = window(start, end)
    frame = open_warehouse(ctx).points(
        metric, start, end, labels=parse_pairs(labels, "--label") or None, every=every,
        agg=agg, by=[b for b in by.split(",") if b] if by is not None else None, fill=fill)
    if fmt == "table":
        frame = frame.drop(columns=["labels"], errors="ignore")
    show_frame(frame, fmt, title=metric, limit=effective_limit(limit, fmt))
    if default_window and fmt == "table":
        note(f"read the last {DEFAULT_WINDOW} (--start/--end choose another window)")
