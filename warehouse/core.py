"""The :class:`Warehouse`: one object for writing, querying and looking after the store."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy.engine import make_url

from warehouse import migrate as migrations
from warehouse.backends import open_backend
from warehouse.backends.paths import database_file
from warehouse.changes import ChangeFeed
from warehouse.config import database_url
from warehouse.errors import UnknownNameError, WarehouseError

if TYPE_CHECKING:
    from warehouse.jobs.runner import JobRun
from warehouse.ingest.writer import Writer, WriteResult
from warehouse.query.points import query_points
from warehouse.query.runs import query_runs, query_steps
from warehouse.schema import HYPERTABLES
from warehouse.timeparse import aware_timestamp, interval_us


class Warehouse:
    """A connection to one warehouse database.

    >>> wh = Warehouse()                 # WAREHOUSE_URL, else duckdb:///warehouse.duckdb
    >>> wh.write_points(df)              # metric, labels, ts, value[, run_id]
    >>> wh.points("duration_ms", "now-7d", "now", every="1h", agg="p95")

    Opening a database that has no schema yet migrates it to the latest revision.
    """

    def __new__(cls, url: str | None = None, *args, **kwargs):
        # An http(s):// URL (argument or WAREHOUSE_URL) is a served warehouse: the same
        # methods, over HTTP (warehouse/client.py). RemoteWarehouse is not a subclass, so
        # Python does not run Warehouse.__init__ on it.
        resolved = database_url(url)
        if cls is Warehouse and resolved.split("://", 1)[0].lower() in ("http", "https"):
            from warehouse.client import RemoteWarehouse

            return RemoteWarehouse(resolved, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, url: str | None = None, *, migrate: bool = True, create: bool = True):
        """``create=False`` (read commands) refuses to make a new warehouse: a missing
        embedded file, or a database without the warehouse schema, raises
        :class:`~warehouse.errors.WarehouseError` and nothing is created."""
        self.url = database_url(url)
        self.backend = open_backend(self.url)
        self.engine = self.backend.engine
        if not create:
            self._require_existing()
        #: Every committed write through this object, as a :class:`~warehouse.changes.Change`.
        self.changes = ChangeFeed()
        self._writer = Writer(self.engine, self.backend, self.changes)
        if migrate:
            self._migrate_if_needed()

    @property
    def alerts(self):
        """This warehouse's alert rules, state and evaluator
        (:class:`warehouse.alerts.AlertManager`, made on first use; docs/alerts.md)."""
        manager = self.__dict__.get("_alerts")
        if manager is None:
            from warehouse.alerts import AlertManager

            manager = self.__dict__["_alerts"] = AlertManager(self)
        return manager

    # -- schema ---------------------------------------------------------------------------
    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema (``warehouse init`` = ``alembic upgrade head``).

        Concurrent migrations of one database run one after the other (a database lock on
        PostgreSQL; the process's write fence on single-writer DuckDB), so the later ones find
        the schema up to date. A database at a revision newer than this code raises
        :class:`~warehouse.errors.WarehouseError` saying so."""
        with self.backend.job_fence(), self.engine.begin() as conn:
            migrations.upgrade(conn, revision)
        self.backend.schema_facts.clear()

    def head_revision(self) -> str:
        """The newest schema revision this version of the code knows."""
        return migrations.head_revision()

    def _migrate_if_needed(self) -> None:
        # A new database is always migrated. An embedded file is brought up to date too; a
        # shared server is not changed behind its operator's back.
        current, head = self.revision(), self.head_revision()
        if current == head:
            return
        if current is not None and current not in migrations.known_revisions():
            raise WarehouseError(
                f"database schema is at revision {current}, newer than this code's head "
                f"{head}; upgrade the warehouse package")
        if current is None or self.backend.capabilities.single_writer:
            self.migrate()
            return
        raise WarehouseError(
            f"the database schema is at revision {current} but this code needs {head}: "
            f"run `warehouse init` (alembic upgrade head)")

    def _require_existing(self) -> None:
        # Checked before connecting: connecting to an embedded file creates it.
        db_file = database_file(self.engine, self.backend)
        shown = db_file if db_file is not None else make_url(self.url).render_as_string(
            hide_password=True)
        missing = (db_file is not None and not db_file.is_file()) or self.revision() is None
        if missing:
            self.engine.dispose()
            raise WarehouseError(f"no warehouse at {shown} (run `warehouse init` to create one)")

    def downgrade(self, revision: str = "base") -> None:
        """Downgrade the schema; ``base`` removes every warehouse table."""
        with self.engine.begin() as conn:
            migrations.downgrade(conn, revision)
        self._writer.series.forget()
        self.backend.schema_facts.clear()

    def revision(self) -> str | None:
        """The schema revision of the database (None before ``migrate``)."""
        with self.engine.connect() as conn:
            return migrations.current_revision(conn)

    # -- ingest ---------------------------------------------------------------------------
    def write_points(self, data, *, label_columns=()) -> WriteResult:
        """Write points from a DataFrame, Arrow table or records; all or nothing.

        Columns: ``metric`` (name), ``ts`` (timezone-aware), ``value`` (finite number), and
        optionally ``labels`` (dict) and ``run_id`` (UUID). Alternatively name plain columns
        as labels with ``label_columns`` (faster for big batches). A point is keyed by its
        series and ``ts``: points already stored are skipped, so replays change nothing.
        Raises :class:`~warehouse.errors.ValidationError` naming row and field.
        """
        return self._writer.write_points(data, label_columns)

    def write_frame(self, data, *, label_columns=()) -> WriteResult:
        """Write a wide frame: a row per label set and instant, a column per metric (the
        shape :meth:`frame` answers in); all or nothing, like :meth:`write_points`.

        Columns: ``ts`` (timezone-aware), the label columns named in ``label_columns``,
        optionally ``run_id``; every other column is a metric of that name, and a missing
        cell (None, NaN) is no point. The result counts points. On DuckDB the rows also go
        into the pivoted copy frames of several metrics read (docs/ingest.md).

        >>> wh.write_frame(df, label_columns=["hostname"])  # ts, hostname, cpu.user, ...
        """
        return self._writer.write_frame(data, label_columns)

    def write_runs(self, data) -> WriteResult:
        """Insert or update runs (columns of the ``runs`` table; see docs/data-model.md)."""
        return self._writer.write_runs(data)

    def write_steps(self, data) -> WriteResult:
        """Insert or update step runs (columns of ``step_runs``; see docs/data-model.md)."""
        return self._writer.write_steps(data)

    def recipe_run(self, name: str, **options):
        """Record one run of recipe ``name`` as a context manager (docs/recording.md).

        >>> with wh.recipe_run("etl-daily", params={"day": "2026-11-25"}) as run:
        ...     with run.step("extract"):
        ...         ...
        """
        from warehouse.recorder import recipe_run

        return recipe_run(self, name, **options)

    # -- query ----------------------------------------------------------------------------
    def points(self, metric: str | list[str], start=None, end=None, *,
               labels: dict | None = None, every=None, agg: str = "mean",
               by: list[str] | None = None, fill=None, rollups: bool = True,
               with_labels: bool | list[str] = True, last: int | None = None) -> pd.DataFrame:
        """Points of ``metric`` in [start, end).

        Without ``every``: raw rows (ts, series_id, value, run_id, labels...). With ``every``
        ('1m', '1h', '1d', a timedelta): one row per series and bucket aggregated with
        ``agg`` (mean, min, max, sum, count, first, last, p50, p95, p99); ``by`` (label
        names) aggregates across series instead; ``fill`` (null, previous, linear, zero or a
        number) adds the empty buckets. ``labels`` keeps series having all those labels; a
        label's value may be a list (or set) of values, any of which matches.
        Buckets a rollup answers exactly are read from it (same answer as raw points);
        ``rollups=False`` reads raw points only.

        ``metric`` may be a list: one statement answers all of them and a ``metric`` column
        (after ``ts``) says which each row is of; ``by`` then groups per metric too.
        ``with_labels``: True (default) adds the ``labels`` dict and one column per label
        name to per-series answers; False leaves them out (cheaper); a list of names adds
        only those columns. ``last=N``: only the N newest buckets with data before ``end``
        (or, without ``every``, the N newest points of each series), read newest chunk
        first; with ``fill``, the N buckets ending at ``end``. See docs/query.md.
        """
        with self.engine.connect() as conn:
            return query_points(conn, self.backend, metric, start, end, labels=labels,
                                every=every, agg=agg, by=by, fill=fill, rollups=rollups,
                                with_labels=with_labels, last=last)

    def frame(self, metrics: list[str], start=None, end=None, *, labels: dict | None = None,
              every=None, agg: str = "mean", by: list[str] | None = None,
              where: str | None = None) -> pd.DataFrame:
        """Several metrics side by side: ``ts``, the label columns, then one column per
        metric, from ONE SQL statement (the engine pivots).

        Rows line up on ``ts`` (or the ``every`` bucket) and labels: with ``by``, the
        ``by`` labels (each metric aggregated with ``agg`` over the series sharing them);
        without, a series' whole label set (the metrics of one host line up). A missing
        value is NaN. ``where="cpu.usage_user > 90"`` keeps the rows where that metric's
        value (its aggregate, with ``every``) compares true: a metric of the frame, one of
        > >= < <= = !=, and a number (bound, never pasted into SQL).
        Reads raw points (and archived files); rollups are not used.
        """
        from warehouse.query.catalog import state_checked
        from warehouse.query.frame import query_frame

        with self.engine.connect() as conn:
            return state_checked(query_frame)(conn, self.backend, metrics, start, end,
                                              labels=labels, every=every, agg=agg, by=by,
                                              where=where)

    def runs(self, *, recipe: str | None = None, start=None, end=None,
             status: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Runs that started in [start, end), optionally of one recipe and status."""
        with self.engine.connect() as conn:
            return query_runs(conn, self.backend, recipe=recipe, start=start, end=end,
                              status=status, limit=limit)

    def steps(self, run_id: str | None = None, *, recipe: str | None = None, start=None,
              end=None) -> pd.DataFrame:
        """Step runs of one run in start order — or of every run of ``recipe`` that
        started in [start, end)."""
        with self.engine.connect() as conn:
            return query_steps(conn, self.backend, run_id, recipe=recipe, start=start, end=end)

    def sql(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        """Run one read-only statement with ``:name`` binds; writing statements are refused."""
        with self.engine.connect() as conn:
            try:
                return self.backend.read_only_query(conn, sql, params or {})
            finally:
                conn.rollback()

    # -- dashboards (warehouse.dashboards; docs/dashboards.md) ----------------------------
    @property
    def dashboards(self):
        """Stored dashboards: ``create/get/update/edit/delete/list/history/restore/share``,
        ``render``, ``export``, ``import_`` (a :class:`warehouse.dashboards.Dashboards`)."""
        from warehouse.dashboards.store import Dashboards

        return Dashboards(self)

    # -- chunks and housekeeping ---------------------------------------------------------
    def show_chunks(self, table: str = "points") -> pd.DataFrame:
        """Chunks of a hypertable: chunk_name, range_start, range_end, rows (hot and
        compressed)."""
        from warehouse.jobs.chunk_policy import chunk_rows

        self._check_hypertable(table)
        with self.engine.connect() as conn:
            return chunk_rows(conn, self.backend, table)

    def drop_chunks(self, table: str, older_than, *, force: bool = False,
                    dry_run: bool = False) -> list[str]:
        """Drop whole chunks of ``table`` that end at or before ``older_than``; returns their
        names.

        Under an "archive before drop" policy a chunk goes only once its archive is verified
        and counts its rows: otherwise :class:`~warehouse.errors.RetentionPolicyError` names
        the unarchived chunks and nothing is dropped. ``force=True`` drops them anyway (their
        rows are lost); ``dry_run=True`` returns what would be dropped and drops nothing.
        """
        from warehouse.jobs.chunk_policy import drop_chunks

        self._check_hypertable(table)
        cutoff = aware_timestamp(older_than, "older_than")
        if cutoff is None:
            raise ValueError("drop_chunks needs older_than (a time or e.g. 'now-90d')")
        return drop_chunks(self, table, cutoff, force=force, dry_run=dry_run)

    def set_chunk_interval(self, table: str, interval) -> None:
        """Interval of chunks made from now on for ``table`` ('1d', '7d', a timedelta)."""
        self._check_hypertable(table)
        with self.engine.begin() as conn:
            self.backend.set_chunk_interval(conn, table, interval_us(interval))

    def maintain(self, now: datetime | None = None) -> dict[str, int]:
        """Create chunks ahead of time, move stray rows out of default partitions and
        refresh the planner's statistics where they are stale (PostgreSQL's partitioned
        parents, after a large load)."""
        now = aware_timestamp(now, "now") if now is not None else pd.Timestamp.now(tz="UTC")
        with self.engine.begin() as conn:
            done = self.backend.maintain(conn, now)
        return {**done, "tables_analysed": len(self.backend.refresh_statistics(self.engine))}

    # -- jobs (warehouse.jobs; docs/jobs.md) ----------------------------------------------
    def run_job(self, name: str, **options) -> JobRun:
        """Run one job now (refresh_rollups, archive, retention, maintain...), recorded in
        ``job_runs``; one runner per job at a time."""
        from warehouse import jobs

        return jobs.run_job(self, name, **options)

    def refresh_rollups(self, now=None) -> dict:
        """Bring points_1m/1h/1d up to date (watermark and late-write invalidations)."""
        return self.run_job("refresh_rollups", now=now)

    def set_retention(self, table: str, keep, *, archive: bool = False,
                      metric: str | None = None):
        """Keep ``table`` (or one metric of points) for ``keep`` ('30d'); archive to Parquet
        before dropping when ``archive``."""
        from warehouse import jobs

        return jobs.set_retention(self, table, keep, archive=archive, metric=metric)

    def remove_retention(self, table: str, metric: str | None = None) -> bool:
        """Remove a retention policy; returns whether one existed."""
        from warehouse import jobs

        return jobs.remove_retention(self, table, metric)

    def retention_policies(self) -> pd.DataFrame:
        """The retention policies in force."""
        from warehouse import jobs

        return jobs.retention_policies(self)

    def list_jobs(self) -> pd.DataFrame:
        """Registered jobs: job, schedule, sql_only, last_started, next_due, description."""
        from warehouse import jobs

        return jobs.list_jobs(self)

    def rollup_state(self) -> pd.DataFrame:
        """Per rollup tier: watermark, rows, pending invalidations."""
        from warehouse import jobs

        return jobs.rollup_state(self)

    def archive_manifest(self) -> pd.DataFrame:
        """Every archived unit: table, chunk, metric, rows, min/max ts, sha256, paths."""
        from warehouse import jobs

        return jobs.archive_manifest(self)

    def restore_archive(self, start, end, **options) -> dict:
        """Bring archived points in [start, end) back into the hot tables (idempotent)."""
        from warehouse import jobs

        return jobs.restore_archive(self, start, end, **options)

    def job_runs(self, job: str | None = None, limit: int = 50) -> pd.DataFrame:
        """Recent job runs: job, started/finished, status, rows affected, error."""
        from warehouse import jobs

        return jobs.job_runs(self, job, limit)

    def info(self) -> dict:
        """Backend, schema revision, and per table: rows, bytes and chunk count."""
        with self.engine.connect() as conn:
            sizes = self.backend.table_sizes(conn)
            chunks = {t: len(self.backend.show_chunks(conn, t)) for t in HYPERTABLES}
        sizes["chunks"] = sizes["table"].map(chunks).astype("Int64")
        from warehouse.jobs.compress import compression_state

        packed = compression_state(self)  # closed chunks' segments (PostgreSQL), if any
        if packed:
            sizes = pd.concat([sizes, pd.DataFrame([{
                "table": "points_compressed", "rows": packed["compressed_rows"],
                "bytes": packed["compressed_bytes"]}])], ignore_index=True)
        return {
            "backend": self.backend.dialect,
            "url": make_url(self.url).render_as_string(hide_password=True),
            "revision": self.revision(),
            "tables": sizes,
        }

    def close(self) -> None:
        """Release connections (and, for DuckDB, the file lock)."""
        if self.__dict__.get("_alerts") is not None:
            self.__dict__["_alerts"].stop()  # its thread must not outlive the engine
        self.engine.dispose()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Warehouse({make_url(self.url).render_as_string(hide_password=True)!r})"

    @staticmethod
    def _check_hypertable(table: str) -> None:
        if table not in HYPERTABLES:
            raise UnknownNameError(
                f"unknown hypertable {table!r}; known: {', '.join(HYPERTABLES)}")


__all__ = ["Warehouse"]
