"""Retention policies and the ``retention`` job.

A policy keeps a table's chunks for ``keep`` (``metric='*'``), or one metric's points for a
shorter time. ``archive=True`` means nothing leaves the hot table before the ``archive`` job
has written, recorded and verified it. The removal of each unit — a chunk, or one metric's
rows of a chunk range — is one SQL statement set in one transaction
(``sql/<dialect>/jobs/retention_drop.sql``) that checks, in SQL and under locks:

* archive policy: the unit's manifest row exists, is verified, and counts exactly the rows
  there now;
* points: the unit is rolled up (before the points_1m watermark, no pending invalidation),
  since rollups are recomputed from points and would otherwise lose what left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection, text

from warehouse.backends.base import Backend
from warehouse.errors import UnknownNameError
from warehouse.jobs.chunk_policy import ALL, Unit, chunk_rows, retention_plan
from warehouse.jobs.reclaim import reclaim_after_job
from warehouse.query.archive_read import refresh_all_points_view
from warehouse.schema import HYPERTABLES
from warehouse.timeparse import interval_us

if TYPE_CHECKING:
    from warehouse.core import Warehouse
    from warehouse.jobs.runner import JobContext

#: Tables whose chunks can be archived to Parquet (runs and step_runs: retention only, so far).
ARCHIVABLE = ("points",)


def set_policy(wh: Warehouse, table: str, keep, *, archive: bool = False,
               metric: str | None = None) -> dict:
    """Keep ``table`` (or one ``metric`` of points) for ``keep`` ('30d', a timedelta)."""
    if table not in HYPERTABLES:
        raise UnknownNameError(f"unknown table {table!r}; retention applies to "
                               f"{', '.join(HYPERTABLES)}")
    metric = metric or ALL
    if metric != ALL and table != "points":
        raise ValueError("a per-metric policy applies to points only")
    if archive and table not in ARCHIVABLE:
        raise ValueError(f"archiving {table} is not supported yet; archive applies to "
                         f"{', '.join(ARCHIVABLE)} (retention without --archive works)")
    keep_us = interval_us(keep)
    with wh.engine.begin() as conn:
        existing = {(p.metric): int(p.keep_us) for p in _policies(conn, wh.backend)
                    if p.table_name == table}
        # A table policy drops whole chunks, which hold every metric: a metric cannot be
        # kept longer than its table.
        if metric != ALL and ALL in existing and keep_us >= existing[ALL]:
            raise ValueError(f"a metric policy must keep less than the table's "
                             f"({existing[ALL] / 86_400_000_000:g} days)")
        longer = [m for m, k in existing.items() if m != ALL and k >= keep_us]
        if metric == ALL and longer:
            raise ValueError(f"metric policies keep {', '.join(longer)} at least as long; "
                             f"a table policy must keep longer than its metric policies")
        conn.execute(text(wh.backend.sql("jobs/retention_set")), {
            "table": table, "metric": metric, "keep_us": keep_us, "archive": bool(archive),
            "now": pd.Timestamp.now(tz="UTC")})
    return {"table_name": table, "metric": metric, "keep_us": keep_us, "archive": archive}


def remove_policy(wh: Warehouse, table: str, metric: str | None = None) -> bool:
    """Remove a policy; returns whether there was one."""
    with wh.engine.begin() as conn:
        result = conn.execute(text(wh.backend.sql("jobs/retention_remove")),
                              {"table": table, "metric": metric or ALL})
        return result.rowcount > 0


def policies(wh: Warehouse) -> pd.DataFrame:
    """Retention policies: table_name, metric, keep (text), keep_us, archive, updated_at."""
    with wh.engine.connect() as conn:
        rows = _policies(conn, wh.backend)
    frame = pd.DataFrame(rows, columns=["table_name", "metric", "keep_us", "archive",
                                        "updated_at"])
    frame.insert(2, "keep", frame["keep_us"].map(_describe_us))
    return frame


def units(conn: Connection, backend: Backend, now: pd.Timestamp, *,
          archive_only: bool = False) -> list[Unit]:
    """Units past their policy at ``now``, oldest first, metric units before chunk-wide ones."""
    found: list[Unit] = []
    chunks_of: dict[str, pd.DataFrame] = {}
    for policy in _policies(conn, backend):
        if archive_only and not policy.archive:
            continue
        table = policy.table_name
        if table not in chunks_of:
            chunks_of[table] = chunk_rows(conn, backend, table)
        chunks = chunks_of[table]
        cutoff = now - pd.Timedelta(microseconds=int(policy.keep_us))
        for chunk in chunks[chunks["range_end"] <= cutoff].itertuples():
            found.append(Unit(table, chunk.chunk_name, chunk.range_start, chunk.range_end,
                              policy.metric, bool(policy.archive),
                              int(chunk.rows) if policy.metric == ALL else None))
    # Per chunk, metric units first: their rows leave before the chunk-wide unit is judged
    # (which is then archived again without them, rather than holding them twice).
    return sorted(found, key=lambda u: (u.start, u.table, u.metric == ALL, u.metric))


def retention_job(ctx: JobContext) -> int:
    """Remove every unit past its policy that may go; returns rows removed. Which may go is
    decided by :func:`~warehouse.jobs.chunk_policy.retention_plan` (the rule
    ``drop_chunks`` obeys too) and checked again by the SQL guard under locks; refused units
    are listed in the run's notes (job_runs.error) and retried next run."""
    wh, backend = ctx.wh, ctx.wh.backend
    with wh.engine.connect() as conn:
        todo, reasons = retention_plan(conn, backend, ctx.now)
    script = backend.sql("jobs/retention_drop")
    removed = 0
    refused = [f"{name}: {why}" for name, why in reasons.items()]
    for unit in todo:
        ctx.check()
        if unit.rows == 0 and (unit.metric != ALL or not backend.capabilities.native_partitions):
            continue  # nothing to delete (an empty partition is still dropped, below)
        with ctx.transaction(exclusive=True) as conn:
            [(gone, why)] = backend.run_script(conn, script, {
                "table": unit.table, "start": unit.start, "end": unit.end,
                "metric": unit.metric, "archive": unit.archive, "now": ctx.now})
        removed += int(gone or 0)
        if why and why != "no such chunk":
            refused.append(f"{unit.chunk_name}[{unit.metric}]: {why}")
    if refused:
        ctx.note(f"retention kept {len(refused)} unit(s): " + "; ".join(refused[:10]))
    if removed:
        reclaim_after_job(ctx)  # DuckDB: CHECKPOINT gives deleted ranges back
    refresh_all_points_view(wh.engine, backend)
    return removed


def _policies(conn: Connection, backend: Backend) -> list:
    return conn.execute(text(backend.sql("jobs/retention_policies"))).fetchall()


def _describe_us(us: int) -> str:
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000),
                       ("s", 1_000_000)):
        if us % size == 0:
            return f"{us // size}{unit}"
    return f"{us}us"
