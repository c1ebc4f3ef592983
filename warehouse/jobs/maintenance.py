"""The ``maintain`` job: chunks made ahead of time, stray default-partition rows moved, the
planner's statistics of partitioned tables refreshed where the engine leaves them stale."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.jobs.runner import JobContext


def maintain_job(ctx: JobContext) -> int:
    """Run the backend's maintenance (``Warehouse.maintain``); returns rows moved.
    (Chunks created are not rows; ``warehouse maintain`` prints both.)"""
    with ctx.transaction(exclusive=True) as conn:
        done = ctx.wh.backend.maintain(conn, ctx.now)
    analysed = ctx.wh.backend.refresh_statistics(ctx.wh.engine)
    if analysed:
        ctx.note(f"analysed {', '.join(analysed)}")
    return int(done.get("rows_moved", 0))
