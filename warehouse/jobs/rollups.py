"""The ``refresh_rollups`` job and the rollup state it leaves (watermarks, pending
invalidations). The body is SQL: ``sql/<dialect>/jobs/refresh_rollups.sql`` (PostgreSQL: the
function ``wh_refresh_rollups``; DuckDB: a script). Python only loops until caught up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import text

from warehouse.model import DAY_US

if TYPE_CHECKING:
    from warehouse.core import Warehouse
    from warehouse.jobs.runner import JobContext

#: How far points_1m advances per transaction on engines where ingest waits for the refresh
#: (PostgreSQL's fence): a day of points keeps each wait short.
SLICE_US = DAY_US


def refresh_rollups_job(ctx: JobContext) -> int:
    """Refresh every tier up to ``ctx.now``; returns rollup rows written."""
    backend = ctx.wh.backend
    script = backend.sql("jobs/refresh_rollups")
    total = 0
    while True:
        ctx.check()
        with ctx.transaction(exclusive=True) as conn:
            [(written, caught_up)] = backend.run_script(
                conn, script, {"now": ctx.now, "max_us": SLICE_US})
        total += int(written or 0)
        if caught_up:
            return total


def rollup_state(wh: Warehouse) -> pd.DataFrame:
    """Per tier: rollup, source, bucket_us, watermark, rows, and pending invalidations."""
    with wh.engine.connect() as conn:
        marks = wh.backend.fetch_frame(
            conn, "SELECT rollup, source, bucket_us, watermark FROM rollup_watermarks "
                  "ORDER BY bucket_us", {})
        pending = conn.execute(text("SELECT count(*) FROM rollup_invalidations")).scalar_one()
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in marks["rollup"]}  # names from our own table
    marks["rows"] = marks["rollup"].map(counts).astype("int64")
    marks["pending_invalidations"] = int(pending)
    return marks
