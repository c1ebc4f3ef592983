"""Analyst SQL that is read-only by construction: what both engines share.

``wh.sql`` / ``warehouse sql`` / the HTTP API run an analyst's text through
``backend.read_only_query``. Each engine checks it with its own parser and runs it where it
cannot write, read files or change settings (docs/views.md, "Read-only SQL"):

- DuckDB (:mod:`warehouse.backends.readonly_duckdb`): one statement of type SELECT; its parse
  tree may name only the analyst relations, loaded side-effect-free functions and in-memory
  table functions; it runs in a ``READ ONLY`` transaction on its own connection, interrupted
  at the time limit.
- PostgreSQL (:mod:`warehouse.backends.readonly_postgresql`): one statement (the extended
  protocol refuses more), that parses as a subquery (so only a query); it runs in a
  ``READ ONLY`` transaction, as a NOLOGIN role holding SELECT on the analyst relations only,
  inside a SECURITY DEFINER function (so it cannot switch role back), with statement, lock
  and idle timeouts.

Every refusal is a :class:`~warehouse.errors.ReadOnlyError` with a one-line message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from warehouse.errors import (
    QueryTimeoutError,
    ReadOnlyError,
    ResultTooLargeError,
    TerminalError,
)

#: Relations analysts may read (docs/views.md and docs/data-model.md). Everything else — the
#: accounts tables (users, api_tokens, web_sessions), alembic_version — stays out of reach.
#: Relations a later migration adds are granted (PostgreSQL) the next time a process sets
#: the reader up; names missing from a database are skipped.
ANALYST_VIEWS = (
    "recipe_daily_stats", "step_stats", "run_timeline", "error_patterns", "resource_usage",
    "slow_runs", "series_latest", "all_points",
)
ANALYST_TABLES = (
    "recipes", "series", "points", "runs", "step_runs", "series_last",
    "points_1m", "points_1h", "points_1d", "rollup_watermarks", "rollup_invalidations",
    "retention_policies", "archive_manifest", "job_runs", "hypertables", "wh_chunks",
    "warehouse_identity",
    # alerts (migration 0009): rules, current state, history, silences — not delivery
    # records, whose errors may quote receivers' addresses
    "alert_rules", "alert_instances", "alert_events", "silences",
    # dashboards (migration 0008): which exist, owner, visibility, version — not the
    # documents of dashboards their owners keep private (dashboard_versions)
    "dashboards",
)
ANALYST_RELATIONS = ANALYST_VIEWS + ANALYST_TABLES

TIMEOUT_ENV = "WAREHOUSE_SQL_TIMEOUT"
MAX_ROWS_ENV = "WAREHOUSE_SQL_MAX_ROWS"


@dataclass(frozen=True)
class ReadOnlyLimits:
    """Limits on one analyst statement.

    ``timeout_s`` bounds the statement (PostgreSQL ``statement_timeout``; DuckDB: interrupted
    from a timer); ``lock_timeout_s`` bounds waiting for a lock (PostgreSQL); ``max_rows`` is
    the row cap: a result with more rows raises :class:`ResultTooLargeError` rather than
    being cut short silently.
    """

    timeout_s: float = 60.0
    max_rows: int = 1_000_000
    lock_timeout_s: float = 5.0

    def __post_init__(self):
        if not self.timeout_s > 0 or not self.lock_timeout_s > 0:
            raise ValueError("read-only SQL timeouts must be positive")
        if int(self.max_rows) < 1:
            raise ValueError("the read-only SQL row cap must be at least 1")

    @classmethod
    def from_env(cls) -> ReadOnlyLimits:
        """Defaults, overridden by WAREHOUSE_SQL_TIMEOUT (seconds) and WAREHOUSE_SQL_MAX_ROWS."""
        def number(name: str, kind, default):
            raw = os.environ.get(name)
            if raw is None or not raw.strip():
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a valid {kind.__name__}") from None

        timeout = number(TIMEOUT_ENV, float, cls.timeout_s)
        # A lock wait gives up well before the statement's own limit, so it says why.
        return cls(timeout_s=timeout, max_rows=number(MAX_ROWS_ENV, int, cls.max_rows),
                   lock_timeout_s=min(cls.lock_timeout_s, timeout / 2))

    def too_many_rows(self) -> ResultTooLargeError:
        return ResultTooLargeError(
            f"the result has more than {self.max_rows:,} rows (the read-only SQL row cap, "
            f"{MAX_ROWS_ENV}); aggregate or add a LIMIT")

    def timed_out(self) -> QueryTimeoutError:
        return QueryTimeoutError(
            f"statement cancelled after the {self.timeout_s:g} s time limit of read-only SQL "
            f"({TIMEOUT_ENV})")

    def lock_waited(self) -> QueryTimeoutError:
        return QueryTimeoutError(
            f"statement cancelled after waiting {self.lock_timeout_s:g} s for a lock "
            f"(read-only SQL lock timeout)")


_TRAILING = re.compile(r"[\s;]+\Z")


def strip_statement(sql: str) -> str:
    """The statement without trailing semicolons and blanks ("SELECT 1;" is one statement).
    Only the end is touched; what remains is checked by the engine's parser."""
    if not isinstance(sql, str):
        raise TypeError("SQL must be text")
    if "\x00" in sql:
        raise ReadOnlyError("SQL text contains a NUL character")
    stripped = _TRAILING.sub("", sql)
    if not stripped.strip():
        raise ReadOnlyError("empty SQL: give one SELECT statement")
    return stripped


def sql_error(message: str) -> TerminalError:
    """A SQL error in analyst text (bad column, syntax...): one line, the engine's words."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "unknown error"
    first = re.sub(r"^ERROR:\s*", "", first)
    return TerminalError(f"SQL error: {first}")

