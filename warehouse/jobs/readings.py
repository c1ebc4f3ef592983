"""The pivoted copy of compressed chunks (DuckDB: migration 0016; PostgreSQL: 0017;
docs/jobs.md "Compression").

After the compress job sorts a closed chunk of ``points``, it copies the chunk into
``readings``: one row per label set (``entity``) and instant, one column per metric. A
frame of several metrics over copied chunks reads those rows (``query/frame_readings.py``)
instead of one row per metric lined up by a join: TSBS high-cpu-all went from 104 to ~10 ms,
as fast as the wide table TSBS's own schema keeps (docs/tsbs.md).

``points`` stays the truth. The copy of a range is deleted, with its ``reading_chunks`` row,
by whatever changes the range's points, in the same transaction (a write into it,
retention, ``drop_chunks``: ``DuckDBBackend.forget_readings``); the next compress run
copies it again. Metric columns are named ``m<col>`` after ``reading_columns.col``, so no
user text becomes an identifier; a chunk whose metrics would take the table past
:data:`MAX_COLUMNS` columns is left without a copy.

On PostgreSQL a row of ``readings`` is a label set's segment of up to 1,000 instants with
an array per metric (a row per instant would cost ~40 bytes a point where the segments
take ~1.3), made right after the chunk is encoded by one function, ``wh_copy_readings``,
and deleted with any change to its points by the database itself (migration 0017).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from warehouse.backends.base import Backend
from warehouse.backends.duckdb_readings import MAX_COLUMNS
from warehouse.query.frame_readings import forget_copies
from warehouse.timeparse import ts_to_us


def copy_chunk(conn: Connection, backend: Backend, start, end, now, *,
               emptied: bool = False) -> int:
    """Copy the chunk range [start, end) of points into ``readings`` in ``conn``'s
    transaction (the compress job's, right after it sorted or encoded the range); rows
    (PostgreSQL: instants) copied. ``emptied`` (PostgreSQL, schema 0018 on): this transaction
    has just deleted every row of the chunk, so the copy reads its segments alone instead of
    scanning the deleted rows again."""
    variables = {"start": start, "end": end}
    if backend.capabilities.native_partitions:
        name = "jobs/readings_copy_emptied" if emptied else "jobs/readings_copy_chunk"
        [(rows,)] = backend.run_script(conn, backend.sql(name), {
            **variables, "now": now, "max_columns": MAX_COLUMNS})
        # frames read the new list (one that a frame reads before the job commits lacks
        # the copy for a few seconds, which only costs speed)
        forget_copies(backend)
        return int(rows)
    cols = [int(c) for (c,) in backend.run_script(
        conn, backend.sql("jobs/readings_register"), variables)]
    have = {name for (name,) in conn.execute(text(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'readings'")).fetchall()}
    wanted = [f"m{c}" for c in cols]
    copied = bool(cols) and len(have | set(wanted)) - 2 <= MAX_COLUMNS  # ts, entity: no metric
    if copied:
        for column in wanted:
            if column not in have:
                conn.execute(text(f"ALTER TABLE readings ADD COLUMN {column} DOUBLE"))
        aggregates = ", ".join(f"max(p.value) FILTER (WHERE c.col = {c}) AS m{c}"
                               for c in cols)
        script = backend.sql("jobs/readings_copy").replace("{columns}", aggregates)
    else:
        script = backend.sql("jobs/readings_skip")
    [(rows,)] = backend.run_script(conn, script, variables)
    backend.run_script(conn, backend.sql("jobs/readings_mark"),
                       {**variables, "now": now, "copied": copied})
    return int(rows)


def copied_ranges(conn: Connection, backend: Backend) -> set[int] | None:
    """Starts (µs) of the chunk ranges the copy was made for or skipped; None where the
    engine keeps no copy."""
    if backend.capabilities.native_partitions or not backend.table_exists(conn,
                                                                         "reading_chunks"):
        return None
    return {ts_to_us(start) for (start,) in conn.execute(
        text(backend.sql("jobs/reading_chunks"))).fetchall()}


__all__ = ["MAX_COLUMNS", "copied_ranges", "copy_chunk"]
