"""Which chunks may leave the hot tables: the one place that decides, for every deleting path
(``Warehouse.drop_chunks`` and the ``retention`` job).

A chunk (or one metric's rows of it: a *unit*) may go when no policy asks for an archive of
it, when it is empty, or when its ``archive_manifest`` row is verified, not yet dropped, and
counts exactly the rows there now. "Archive before drop" holds for every chunk of a table
that has an archive policy, whatever its age: a policy's ``keep`` says when retention drops,
not which chunks may lose their archive.

* a whole chunk (metric ``*``) needs its own archive when the table's policy archives, and
  otherwise, for each metric whose policy archives, that metric's rows archived (by a metric
  unit) unless it has none in the chunk;
* one metric's rows need an archive when that metric's policy archives, or, without a policy
  of its own, when the table's does.

The SQL of the retention job (``sql/<dialect>/jobs/retention_drop.sql``) checks the same
invariant again under locks, so a unit that changes after it was judged is still refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection, text

from warehouse.backends.base import Backend
from warehouse.errors import RetentionPolicyError
from warehouse.jobs.reclaim import reclaim_space
from warehouse.query.archive_read import compressed_segments, refresh_all_points_view
from warehouse.timeparse import ts_to_us

if TYPE_CHECKING:
    from warehouse.core import Warehouse

ALL = "*"
NOT_ARCHIVED = "not archived yet"


@dataclass(frozen=True)
class Unit:
    """What leaves the hot table at once: a chunk of a table, or one metric's rows of it.
    ``archive``: a policy requires a verified archive of it first."""

    table: str
    chunk_name: str
    start: pd.Timestamp
    end: pd.Timestamp
    metric: str
    archive: bool
    rows: int | None = None  # hot rows, when known


@dataclass(frozen=True)
class ChunkVerdict:
    """What may go of a table's chunks that end at or before a cutoff.

    ``droppable``: units that may leave now; ``unarchived``: units an archive policy requires
    a verified archive of first, with ``reasons`` (label -> why); ``archived``: the droppable
    units whose verified manifest row stands for their rows (their files answer queries once
    the rows are gone)."""

    droppable: list[Unit]
    unarchived: list[Unit]
    reasons: dict[str, str]
    archived: list[Unit]

    def labels(self, units: list[Unit]) -> list[str]:
        """``chunk`` or ``chunk[metric]`` of each unit."""
        return [label(u) for u in units]


def label(unit: Unit) -> str:
    """How a unit is named to the operator: its chunk, and the metric if only one."""
    return unit.chunk_name if unit.metric == ALL else f"{unit.chunk_name}[{unit.metric}]"


def judge_chunks(conn: Connection, backend: Backend, table: str, cutoff: pd.Timestamp, *,
                 metric: str = ALL, policies: list | None = None,
                 chunks: pd.DataFrame | None = None) -> ChunkVerdict:
    """Judge the chunks of ``table`` ending at or before ``cutoff`` (whole chunks, or only
    ``metric``'s rows of them). ``policies`` (rows of ``jobs/retention_policies``) and
    ``chunks`` (``backend.show_chunks``) are read here unless the caller has them."""
    if policies is None:
        policies = conn.execute(text(backend.sql("jobs/retention_policies"))).fetchall()
    if chunks is None:
        chunks = chunk_rows(conn, backend, table)
    own = {p.metric: bool(p.archive) for p in policies if p.table_name == table}
    table_archives = own.get(ALL, False)
    if metric == ALL:
        required_metrics = [] if table_archives else sorted(
            m for m, archives in own.items() if m != ALL and archives)
        required = table_archives
    else:
        required_metrics = []
        required = own.get(metric, table_archives)
    manifest = {(ts_to_us(r.chunk_start), r.metric): r for r in conn.execute(
        text(backend.sql("jobs/manifest_of_table")), {"table": table}).fetchall()}

    droppable: list[Unit] = []
    unarchived: list[Unit] = []
    archived: list[Unit] = []
    reasons: dict[str, str] = {}
    for chunk in chunks[chunks["range_end"] <= cutoff].itertuples():
        unit = Unit(table, chunk.chunk_name, chunk.range_start, chunk.range_end, metric,
                    required, int(chunk.rows) if metric == ALL else None)
        start_us = ts_to_us(chunk.range_start)
        if unit.rows is None:
            unit = replace(unit, rows=_count(conn, backend, unit, metric))
        hot = unit.rows
        why = _archive_problem(manifest.get((start_us, metric)), hot)
        if hot == 0 or why is None:
            droppable.append(unit)
            if hot and why is None:
                archived.append(unit)
        elif required:
            unarchived.append(unit)
            reasons[label(unit)] = why
        else:
            problems = []
            for name in required_metrics:
                part = replace(unit, metric=name, rows=None)
                rows = _count(conn, backend, part, name)
                problem = _archive_problem(manifest.get((start_us, name)), rows)
                if rows and problem is not None:
                    problems.append(f"metric {name}: {problem}")
                elif rows:
                    archived.append(replace(part, rows=rows))
            if problems:
                unarchived.append(unit)
                reasons[label(unit)] = "; ".join(problems)
            else:
                droppable.append(unit)
    return ChunkVerdict(droppable, unarchived, reasons, archived)


def retention_plan(conn: Connection, backend: Backend,
                   now: pd.Timestamp) -> tuple[list[Unit], dict[str, str]]:
    """The retention job's work at ``now``: (units past their policy that may go, oldest
    first and metric units before chunk-wide ones; label -> why for units kept because an
    archive policy wants a verified archive first)."""
    policies = conn.execute(text(backend.sql("jobs/retention_policies"))).fetchall()
    chunks_of: dict[str, pd.DataFrame] = {}
    todo: list[Unit] = []
    refused: dict[str, str] = {}
    for policy in policies:
        table = policy.table_name
        if table not in chunks_of:
            chunks_of[table] = chunk_rows(conn, backend, table)
        cutoff = now - pd.Timedelta(microseconds=int(policy.keep_us))
        verdict = judge_chunks(conn, backend, table, cutoff, metric=policy.metric,
                               policies=policies, chunks=chunks_of[table])
        todo += verdict.droppable
        refused.update(verdict.reasons)
    # Per chunk, metric units first: their rows leave before the chunk-wide unit is judged
    # again in SQL (which is then archived again without them, rather than holding them twice).
    todo.sort(key=lambda u: (u.start, u.table, u.metric == ALL, u.metric))
    return todo, refused


def chunk_rows(conn: Connection, backend: Backend, table: str) -> pd.DataFrame:
    """``backend.show_chunks`` with ``rows`` counting compressed rows too: a compressed chunk
    is empty as a partition, not as data."""
    chunks = backend.show_chunks(conn, table)
    if table != "points" or chunks.empty or not compressed_segments(conn, backend):
        return chunks
    compressed = dict(conn.execute(text(backend.sql("jobs/compressed_rows_by_chunk"))).fetchall())
    return chunks.assign(rows=chunks["rows"] + chunks["chunk_name"].map(
        lambda name: int(compressed.get(name, 0))))


def drop_chunks(wh: Warehouse, table: str, older_than: pd.Timestamp, *, force: bool = False,
                dry_run: bool = False) -> list[str]:
    """Drop the chunks of ``table`` that end at or before ``older_than``, obeying the archive
    policy: raise :class:`RetentionPolicyError` naming the chunks an archive policy requires
    a verified archive of (``force=True`` drops them anyway). ``dry_run=True`` drops nothing
    and returns what would be dropped. Returns the names of the chunks dropped.

    Judging and dropping happen in one transaction under the locks retention takes (the
    chunks of the table, the manifest rows), so what was judged is what goes."""
    backend = wh.backend
    now = pd.Timestamp.now(tz="UTC")
    with backend.job_fence(), wh.engine.begin() as conn:
        conn.execute(text(backend.sql("jobs/lock_chunks")), {"table": table})
        conn.execute(text(backend.sql("jobs/lock_manifest_for_drop")), {"table": table})
        verdict = judge_chunks(conn, backend, table, older_than)
        if verdict.unarchived and not force:
            raise RetentionPolicyError(table, verdict.labels(verdict.unarchived),
                                       verdict.reasons)
        if dry_run:  # the same judgement, nothing dropped (the locks go with the commit)
            return verdict.labels(verdict.droppable + verdict.unarchived)
        dropped = backend.drop_chunks(conn, table, older_than)
        for unit in verdict.archived:
            conn.execute(text(backend.sql("jobs/manifest_dropped")), {
                "table": table, "start": unit.start, "metric": unit.metric,
                "rows": unit.rows, "now": now})
    if dropped:
        reclaim_space(wh)  # best effort: a deferral is logged (jobs/reclaim.py)
        refresh_all_points_view(wh.engine, backend)
    return dropped


def _archive_problem(entry, hot: int) -> str | None:
    """None if ``entry`` (a manifest row or None) is a verified archive of exactly ``hot``
    rows still in the hot table, else why not."""
    if entry is None:
        return NOT_ARCHIVED
    if not entry.verified:
        return "archive not verified"
    if entry.dropped_at is not None:
        return (f"archived and dropped, yet holds {hot} hot rows written since "
                f"(restore the range and archive again)")
    if int(entry.rows) != hot:
        return f"manifest has {int(entry.rows)} rows, the chunk {hot}: archive again first"
    return None


def _count(conn: Connection, backend: Backend, unit: Unit, metric: str) -> int:
    """Hot rows of ``metric`` in the unit's range (metric units exist for points only)."""
    return int(conn.execute(text(backend.sql("jobs/count_unit_rows")), {
        "start": unit.start, "end": unit.end, "metric": metric}).scalar_one())
