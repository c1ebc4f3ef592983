"""The bucket width of an interval variable set to ``auto``: chosen from the dashboard's time
range, so a year-long panel asks for daily buckets (read from the 1d rollup) rather than
hourly or per-minute ones, and a day-long one still shows minutes."""

from __future__ import annotations

import pandas as pd

from warehouse.timeparse import interval_us

AUTO = "auto"
#: Widths ``auto`` chooses from: each is a whole number of a rollup tier's bucket (1m, 1h,
#: 1d), so wh.points can answer from the rollups.
WIDTHS = ("1m", "5m", "15m", "1h", "6h", "1d", "7d")
#: At most this many buckets per series: a chart 1,000 points wide is as detailed as a
#: screen shows, and 20 hosts then stay under 20,000 rows.
MAX_BUCKETS = 1000
#: Without both ends of the range there is nothing to divide: daily buckets.
UNBOUNDED = "1d"


def auto_width(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """The narrowest of :data:`WIDTHS` that cuts [start, end) into at most
    :data:`MAX_BUCKETS` buckets (the widest when even that gives more)."""
    if start is None or end is None:
        return UNBOUNDED
    span = end - start
    for width in WIDTHS:
        if span <= pd.Timedelta(microseconds=interval_us(width) * MAX_BUCKETS):
            return width
    return WIDTHS[-1]


__all__ = ["AUTO", "MAX_BUCKETS", "WIDTHS", "auto_width"]
