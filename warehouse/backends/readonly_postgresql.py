"""Analyst SQL on PostgreSQL, read-only by construction.

No PostgreSQL parser ships with Python, so the server's own parser does the checking:

1. The statement's binds are rendered by psycopg (client-side binding: values are quoted by
   the driver, never formatted by us), then the text is Parsed alone through the extended
   query protocol, which accepts exactly one statement ("cannot insert multiple commands into
   a prepared statement"): ``SELECT 1; COMMIT; DELETE ...`` never runs.
2. It is Parsed again as a subquery (sql/postgresql/readonly/wrap_query.sql): only a query
   (SELECT, VALUES, TABLE, WITH ... SELECT) is valid there, and a data-modifying WITH is not.
   So COMMIT, ROLLBACK, COPY (any), SET, LOCK, EXPLAIN, DO, PREPARE/EXECUTE, DDL, DML are
   refused before anything runs. Describing it gives the result's column types.
3. It runs in a ``READ ONLY`` transaction with ``statement_timeout``, ``lock_timeout`` and
   ``idle_in_transaction_session_timeout`` set LOCAL, as this database's reader role (NOLOGIN,
   no attributes, no memberships, SELECT on the analyst relations only: no file or program
   access, no signalling of other sessions), INSIDE ``wh_readonly.run_query``, a SECURITY
   DEFINER function the reader owns. That last part matters: after a plain SET ROLE, a query
   can call ``set_config('role', '<login role>', true)`` and be the (superuser) login role
   again in mid-statement; PostgreSQL refuses that inside a SECURITY DEFINER function.
4. At most the row cap + 1 rows come back (LIMIT in the wrapper); more raises.
5. The transaction is rolled back and session advisory locks (which survive a rollback) are
   released, so the pooled connection carries nothing over.

The role, the function and the grants are made lazily and idempotently
(sql/postgresql/readonly/ensure_reader.sql), once per process and again after a migration.
"""

from __future__ import annotations

import pandas as pd
import psycopg
from psycopg import pq
from psycopg import sql as pgsql
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from warehouse.backends.readonly import (
    ANALYST_RELATIONS,
    ReadOnlyLimits,
    sql_error,
    strip_statement,
)
from warehouse.errors import ReadOnlyError, TerminalError

_READY = "readonly_role"  # key in backend.schema_facts (cleared by migrate/downgrade)


class _LostGrant(Exception):
    """Permission denied on an analyst relation: its grant may be gone (re-created view)."""


def read_only_query(backend, conn: Connection, sql: str, params: dict,
                    limits: ReadOnlyLimits) -> pd.DataFrame:
    """Check and run one analyst statement (see the module docstring). Anything not
    committed on ``conn`` is rolled back first: the statement runs in its own transaction."""
    raw: psycopg.Connection = conn.connection.driver_connection
    statement = _bind(raw, conn, strip_statement(sql), params)
    fresh = _READY not in backend.schema_facts
    role = ensure_reader(backend)
    try:
        columns, rows = _run(backend, raw, conn, role, statement, limits)
    except _LostGrant as denied:
        # A relation re-created by a migration in another process lost its grant: set the
        # reader up again once; then a refusal stands.
        if fresh:
            raise ReadOnlyError(f"not allowed in read-only SQL: {denied}") from None
        backend.schema_facts.pop(_READY, None)
        role = ensure_reader(backend)
        try:
            columns, rows = _run(backend, raw, conn, role, statement, limits)
        except _LostGrant as again:
            raise ReadOnlyError(f"not allowed in read-only SQL: {again}") from None
    if len(rows) > limits.max_rows:
        raise limits.too_many_rows()
    return pd.DataFrame(rows, columns=columns)


def ensure_reader(backend) -> str:
    """This database's read-only role, made (with its function and grants) if needed."""
    role = backend.schema_facts.get(_READY)
    if role:
        return role
    try:
        with backend.engine.begin() as setup:
            role = setup.execute(text(backend.sql("readonly/reader_role"))).scalar_one()
            _settings(backend, setup, {"wh.readonly_role": role,
                                       "wh.readonly_relations": ",".join(ANALYST_RELATIONS)})
            setup.execute(text(backend.sql("readonly/ensure_reader")))
    except Exception as exc:  # noqa: BLE001 - any failure means no safe way to run it
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ReadOnlyError(
            f"cannot set up the read-only role for analyst SQL ({reason}); connect once as "
            f"a role with CREATEROLE that owns the warehouse tables") from None
    backend.schema_facts[_READY] = role
    return role


def grant_analyst(backend, conn: Connection, role_name: str, timeout_s: float = 60.0) -> None:
    """Give ``role_name`` (created NOLOGIN if missing) SELECT on the analyst relations only,
    with read-only sessions and a statement timeout by default. Runs in ``conn``'s
    transaction; the caller commits."""
    if not isinstance(role_name, str) or not role_name or len(role_name) > 63 \
            or "\x00" in role_name:
        raise ValueError("a role name is 1-63 characters without NUL")
    if role_name.lower().startswith("pg_"):
        raise ValueError(f"{role_name!r}: names starting with pg_ are reserved by PostgreSQL")
    try:
        _settings(backend, conn, {"wh.analyst_role": role_name,
                                  "wh.readonly_relations": ",".join(ANALYST_RELATIONS),
                                  "wh.analyst_timeout": f"{int(timeout_s * 1000)}ms"})
        conn.execute(text(backend.sql("readonly/grant_analyst")))
    except DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise TerminalError(f"cannot grant analyst access to {role_name!r}: {reason}") \
            from None


def _settings(backend, conn: Connection, values: dict[str, str]) -> None:
    for name, value in values.items():
        conn.execute(text(backend.sql("readonly/setting")), {"name": name, "value": value})


def _bind(raw: psycopg.Connection, conn: Connection, sql: str, params: dict) -> str:
    """The statement with its ``:name`` binds rendered as literals by psycopg."""
    compiled = text(sql).compile(dialect=conn.dialect)
    for name in compiled.binds:
        if name not in params:
            raise sql_error(f"no value given for the bind parameter :{name}")
    try:
        return psycopg.ClientCursor(raw).mogrify(str(compiled), params)
    except (psycopg.ProgrammingError, TypeError, ValueError, KeyError) as exc:
        raise sql_error(f"bad bind parameters: {exc}") from None


def _execute(backend, raw: psycopg.Connection, conn: Connection, name: str,
             params: dict | None = None, **parts):
    """Run this engine's SQL file ``name`` on the driver connection (``:name`` binds)."""
    query = str(text(backend.sql(name)).compile(dialect=conn.dialect))
    if parts:
        query = pgsql.SQL(query).format(**parts)
    return raw.execute(query, params or {})


def _run(backend, raw: psycopg.Connection, conn: Connection, role: str, statement: str,
         limits: ReadOnlyLimits) -> tuple[list[str], list[tuple]]:
    if raw.info.transaction_status != pq.TransactionStatus.IDLE:
        raw.rollback()  # READ ONLY must be the transaction's first statement
    failed = True
    try:
        _execute(backend, raw, conn, "readonly/begin")
        _execute(backend, raw, conn, "readonly/limits", {
            "statement_timeout": f"{max(1, int(limits.timeout_s * 1000))}ms",
            "lock_timeout": f"{max(1, int(limits.lock_timeout_s * 1000))}ms",
            "idle_timeout": f"{max(1, int((limits.timeout_s + 5) * 1000))}ms",
            "role": role})
        _parse(raw, statement, limits)
        described = _parse(raw, _wrap(backend, statement, "*", limits), limits, wrapper=True)
        names = [described.fname(i).decode() for i in range(described.nfields)]
        if not names:
            raise ReadOnlyError("the query returns no columns")
        types = _column_types(backend, raw, conn, described)
        # Numbered columns: names may repeat ("SELECT 1 AS a, 2 AS a"), and pseudo-types
        # (void from pg_sleep, record) are read as text.
        select_list = ", ".join(f"c{i}::text" if pseudo else f"c{i}"
                                for i, (_, pseudo) in enumerate(types))
        numbered = _wrap(backend, statement, select_list, limits,
                         f"({', '.join(f'c{i}' for i in range(len(types)))})")
        columns = pgsql.SQL(", ").join(
            pgsql.SQL("{} {}").format(pgsql.Identifier(f"c{i}"),
                                      pgsql.SQL("text" if pseudo else name))
            for i, (name, pseudo) in enumerate(types))
        rows = _execute(backend, raw, conn, "readonly/run_query", {"query": numbered},
                        columns=columns).fetchall()
        # Session advisory locks survive a rollback: release any the query took, now.
        _execute(backend, raw, conn, "readonly/release_session_locks")
        failed = False
        return names, rows
    except psycopg.errors.QueryCanceled:
        raise limits.timed_out() from None
    except psycopg.errors.LockNotAvailable:
        raise limits.lock_waited() from None
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.ActiveSqlTransaction) as exc:
        raise ReadOnlyError(f"read-only SQL cannot write: {exc.diag.message_primary}") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        if _granted_relation(exc):
            raise _LostGrant(exc.diag.message_primary) from None
        raise ReadOnlyError(f"not allowed in read-only SQL: {exc.diag.message_primary}") \
            from None
    except psycopg.Error as exc:
        if raw.closed or raw.broken:
            raise
        raise sql_error(exc.diag.message_primary or str(exc)) from None
    finally:
        _finish(backend, raw, conn, failed)


def _wrap(backend, statement: str, select_list: str, limits: ReadOnlyLimits,
          column_aliases: str = "") -> str:
    # Our parts first: the analyst's text, inserted last, is never searched or replaced in.
    return (backend.sql("readonly/wrap_query")
            .replace("{limit}", str(int(limits.max_rows) + 1))
            .replace("{select_list}", select_list)
            .replace("{column_aliases}", column_aliases)
            .replace("{query}", statement))


def _column_types(backend, raw, conn, described) -> list[tuple[str, bool]]:
    """(type name, is pseudo-type) per column; built-in types are remembered (their OIDs
    are fixed below FirstNormalObjectId, 16384)."""
    keys = [(described.ftype(i), described.fmod(i)) for i in range(described.nfields)]
    if not all(key in _TYPE_NAMES for key in keys):
        found = _execute(backend, raw, conn, "readonly/column_types", {
            "oids": [k[0] for k in keys], "mods": [k[1] for k in keys]}).fetchall()
        if len(found) != len(keys):
            raise sql_error("a result column has a type the server does not know")
        for key, (name, pseudo) in zip(keys, found):
            if key[0] < 16384:
                _TYPE_NAMES[key] = (name, bool(pseudo))
        return [(name, bool(pseudo)) for name, pseudo in found]
    return [_TYPE_NAMES[key] for key in keys]


_TYPE_NAMES: dict[tuple[int, int], tuple[str, bool]] = {}


def _granted_relation(exc: psycopg.Error) -> bool:
    """Whether a permission error names one of the analyst relations (lost grant: retry)."""
    message = exc.diag.message_primary or ""
    return any(message.endswith(f" {name}") for name in ANALYST_RELATIONS)


def _parse(raw: psycopg.Connection, query: str, limits: ReadOnlyLimits, wrapper: bool = False):
    """Parse ``query`` as the unnamed prepared statement, without running it; for the
    wrapper, describe it too. Parse takes exactly one statement (extended query protocol)."""
    result = raw.pgconn.prepare(b"", query.encode())
    if result.status == pq.ExecStatus.COMMAND_OK and wrapper:
        result = raw.pgconn.describe_prepared(b"")
    if result.status == pq.ExecStatus.COMMAND_OK:
        return result
    state = (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
    message = (result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()
    if "multiple commands" in message:
        raise ReadOnlyError("exactly one statement may run here; got several")
    if state == "57014":
        raise limits.timed_out()
    if state == "55P03":
        raise limits.lock_waited()
    if state.startswith("25"):  # invalid transaction state: read-only transaction
        raise ReadOnlyError(f"read-only SQL cannot write: {message}")
    if wrapper and state != "42501":  # it parses alone, but not as a subquery: not a query
        detail = "" if state == "42601" else f" ({message})"
        raise ReadOnlyError("only a query (SELECT, VALUES, TABLE or WITH ... SELECT) may run "
                            f"here{detail}")
    if state == "42501":
        raise ReadOnlyError(f"not allowed in read-only SQL: {message}")
    raise sql_error(message or result.error_message.decode(errors="replace"))


def _finish(backend, raw: psycopg.Connection, conn: Connection, failed: bool) -> None:
    """Roll back; after a failure also drop session advisory locks the query may have
    taken (on success they were released inside the transaction)."""
    if raw.closed or raw.broken:
        return
    raw.rollback()
    if failed:
        _execute(backend, raw, conn, "readonly/release_session_locks")
        raw.rollback()
