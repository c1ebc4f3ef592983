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

All of it travels in ONE round trip when the statement ran before (a libpq pipeline,
warehouse/backends/postgresql_pipeline.py): BEGIN READ ONLY, the limits, both Parses, the
Describe, the run, the release of locks and the ROLLBACK, each its own extended-protocol
statement (so each is exactly one statement, and the analyst's text is never part of a
multi-statement message), with one Sync at the end. The server skips everything after the
first error up to the Sync, so a statement refused at step 1 or 2 never runs. The run needs
the column types step 2 describes; they are taken from the last call with the same text and
bind types, and if the Describe now says otherwise (the schema changed), that run's answer or
error is dropped and the call goes again in two round trips (checks, then run), as a first
call does. (Nine before: ~0.04 ms each to an idle local server, several ms on a busy one.)

The role, the function and the grants are made lazily and idempotently
(sql/postgresql/readonly/ensure_reader.sql), once per process and again after a migration.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import psycopg
from psycopg import pq
from psycopg import sql as pgsql
from psycopg.adapt import Transformer
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from warehouse.backends.postgresql_pipeline import Pipeline
from warehouse.backends.readonly import (
    ANALYST_RELATIONS,
    ReadOnlyLimits,
    sql_error,
    strip_statement,
)
from warehouse.errors import ReadOnlyError, TerminalError

_READY = "readonly_role"  # key in backend.schema_facts (cleared by migrate/downgrade)
#: In backend.schema_facts: {(statement, bind types): (described column keys, types)}, the
#: column types the last call of a statement described, so the next one runs in the same
#: round trip as its checks; at most _KNOWN_MAX statements.
_KNOWN = "readonly_columns"
_KNOWN_MAX = 256
_ExecStatus = pq.ExecStatus


class _LostGrant(Exception):
    """Permission denied on an analyst relation: its grant may be gone (re-created view)."""


def read_only_query(backend, conn: Connection, sql: str, params: dict,
                    limits: ReadOnlyLimits) -> pd.DataFrame:
    """Check and run one analyst statement (see the module docstring). Anything not
    committed on ``conn`` is rolled back first: the statement runs in its own transaction."""
    raw: psycopg.Connection = conn.connection.driver_connection
    stripped = strip_statement(sql)
    statement = _bind(raw, conn, stripped, params)
    # What the column types remembered from an earlier call are kept under.
    key = (stripped, tuple(sorted((name, type(value).__name__)
                                  for name, value in params.items())))
    fresh = _READY not in backend.schema_facts
    role = ensure_reader(backend)
    try:
        columns, rows = _run(backend, raw, conn, role, statement, limits, key)
    except _LostGrant as denied:
        # A relation re-created by a migration in another process lost its grant: set the
        # reader up again once; then a refusal stands.
        if fresh:
            raise ReadOnlyError(f"not allowed in read-only SQL: {denied}") from None
        backend.schema_facts.pop(_READY, None)
        role = ensure_reader(backend)
        try:
            columns, rows = _run(backend, raw, conn, role, statement, limits, key)
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
    compiled, binds = _compiled(sql, conn.dialect)
    for name in binds:
        if name not in params:
            raise sql_error(f"no value given for the bind parameter :{name}")
    try:
        return psycopg.ClientCursor(raw).mogrify(compiled, params)
    except (psycopg.ProgrammingError, TypeError, ValueError, KeyError) as exc:
        raise sql_error(f"bad bind parameters: {exc}") from None


@lru_cache(maxsize=256)
def _compiled(sql: str, dialect) -> tuple[str, tuple[str, ...]]:
    """``sql`` in psycopg's paramstyle and its bind names (SQLAlchemy's text() compile costs
    ~0.1 ms; analysts repeat their statements)."""
    compiled = text(sql).compile(dialect=dialect)
    return str(compiled), tuple(compiled.binds)


def _execute(backend, raw: psycopg.Connection, conn: Connection, name: str,
             params: dict | None = None):
    """Run this engine's SQL file ``name`` on the driver connection (``:name`` binds)."""
    return raw.execute(_compiled(backend.sql(name), conn.dialect)[0], params or {})


def _run(backend, raw: psycopg.Connection, conn: Connection, role: str, statement: str,
         limits: ReadOnlyLimits, key: tuple) -> tuple[list[str], list[tuple]]:
    remembered = backend.schema_facts.setdefault(_KNOWN, {})
    answer = _attempt(backend, raw, conn, role, statement, limits, remembered.get(key))
    if answer is None:  # the column types remembered are not the statement's any more
        remembered.pop(key, None)
        answer = _attempt(backend, raw, conn, role, statement, limits, None)
    names, described, rows = answer
    if key not in remembered and len(remembered) >= _KNOWN_MAX:
        # A bound, not an LRU: analysts repeat a few statements. clear() is one step for
        # other threads of the process (the server), where evicting one key is not.
        remembered.clear()
    remembered[key] = described
    return names, rows


def _attempt(backend, raw: psycopg.Connection, conn: Connection, role: str, statement: str,
             limits: ReadOnlyLimits, expected: tuple | None):
    """One transaction: (column names, (column keys, types), rows). With ``expected`` (the
    column keys and types of an earlier call) the run goes with the checks; None when the
    statement now describes other columns."""
    if raw.info.transaction_status != pq.TransactionStatus.IDLE:
        raw.rollback()  # READ ONLY must be the transaction's first statement
    failed = True
    try:
        checks = Pipeline(raw)
        checks.execute(backend.sql("readonly/begin"))
        checks.execute(backend.sql("readonly/limits"), {
            "statement_timeout": f"{max(1, int(limits.timeout_s * 1000))}ms",
            "lock_timeout": f"{max(1, int(limits.lock_timeout_s * 1000))}ms",
            "idle_timeout": f"{max(1, int((limits.timeout_s + 5) * 1000))}ms",
            "role": role})
        checks.parse(statement)
        checks.parse(_wrap(backend, statement, "*", limits))
        checks.describe()
        if expected is not None:
            _then_run(checks, backend, statement, limits, expected[1])
        results = checks.send()
        _refuse_failed_check(raw, results[:5], limits)
        described = results[4]
        names = [described.fname(i).decode() for i in range(described.nfields)]
        if not names:
            raise ReadOnlyError("the query returns no columns")
        keys = tuple((described.ftype(i), described.fmod(i)) for i in range(described.nfields))
        if expected is not None:
            if expected[0] != keys:
                return None
            rows = _rows(raw, results[5:])
        else:
            types = _column_types(backend, raw, conn, keys)
            run = Pipeline(raw)
            _then_run(run, backend, statement, limits, types)
            rows = _rows(raw, run.send())
            expected = (keys, types)
        failed = False
        return names, expected, rows
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


def _then_run(pipeline: Pipeline, backend, statement: str, limits: ReadOnlyLimits,
              types: tuple[tuple[str, bool], ...]) -> None:
    """Add the run of the wrapped statement, the release of session advisory locks (they
    survive a rollback) and the ROLLBACK that ends the transaction."""
    select_list, aliases, run_query = _numbered_columns(backend.sql("readonly/run_query"), types)
    pipeline.execute(run_query, {"query": _wrap(backend, statement, select_list, limits, aliases)})
    pipeline.execute(backend.sql("readonly/release_session_locks"))
    pipeline.execute(backend.sql("readonly/rollback"))


@lru_cache(maxsize=256)
def _numbered_columns(run_query: str, types: tuple[tuple[str, bool], ...]
                      ) -> tuple[str, str, str]:
    """The wrapper's select list and column aliases, and the run with its column definition
    list, for these column types (composing them cost ~0.15 ms a call)."""
    # Numbered columns: names may repeat ("SELECT 1 AS a, 2 AS a"), and pseudo-types
    # (void from pg_sleep, record) are read as text.
    select_list = ", ".join(f"c{i}::text" if pseudo else f"c{i}"
                            for i, (_, pseudo) in enumerate(types))
    aliases = f"({', '.join(f'c{i}' for i in range(len(types)))})"
    columns = pgsql.SQL(", ").join(
        pgsql.SQL("{} {}").format(pgsql.Identifier(f"c{i}"),
                                  pgsql.SQL("text" if pseudo else name))
        for i, (name, pseudo) in enumerate(types))
    return (select_list, aliases,
            pgsql.SQL(run_query).format(columns=columns).as_string(None))


def _rows(raw: psycopg.Connection, results: list[pq.PGresult]) -> list[tuple]:
    """The rows of the run (the first result), once every result succeeded."""
    for result in results:
        if result.status not in (_ExecStatus.TUPLES_OK, _ExecStatus.COMMAND_OK):
            raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
    loader = Transformer.from_context(raw)
    loader.set_pgresult(results[0])
    return loader.load_rows(0, results[0].ntuples, tuple)


def _wrap(backend, statement: str, select_list: str, limits: ReadOnlyLimits,
          column_aliases: str = "") -> str:
    # Our parts first: the analyst's text, inserted last, is never searched or replaced in.
    return (backend.sql("readonly/wrap_query")
            .replace("{limit}", str(int(limits.max_rows) + 1))
            .replace("{select_list}", select_list)
            .replace("{column_aliases}", column_aliases)
            .replace("{query}", statement))


def _column_types(backend, raw, conn, keys) -> tuple[tuple[str, bool], ...]:
    """(type name, is pseudo-type) per column key (type OID, modifier); built-in types are
    remembered (their OIDs are fixed below FirstNormalObjectId, 16384)."""
    if not all(key in _TYPE_NAMES for key in keys):
        found = _execute(backend, raw, conn, "readonly/column_types", {
            "oids": [k[0] for k in keys], "mods": [k[1] for k in keys]}).fetchall()
        if len(found) != len(keys):
            raise sql_error("a result column has a type the server does not know")
        for key, (name, pseudo) in zip(keys, found):
            if key[0] < 16384:
                _TYPE_NAMES[key] = (name, bool(pseudo))
        return tuple((name, bool(pseudo)) for name, pseudo in found)
    return tuple(_TYPE_NAMES[key] for key in keys)


_TYPE_NAMES: dict[tuple[int, int], tuple[str, bool]] = {}


def _granted_relation(exc: psycopg.Error) -> bool:
    """Whether a permission error names one of the analyst relations (lost grant: retry)."""
    message = exc.diag.message_primary or ""
    return any(message.endswith(f" {name}") for name in ANALYST_RELATIONS)


def _refuse_failed_check(raw: psycopg.Connection, results: list[pq.PGresult],
                         limits: ReadOnlyLimits) -> None:
    """Raise for the first failed step of the checks: BEGIN, the limits, the Parse of the
    statement alone, the Parse and the Describe of it as a subquery (in that order)."""
    for step, result in enumerate(results):
        if result.status in (_ExecStatus.COMMAND_OK, _ExecStatus.TUPLES_OK):
            continue
        if step >= 2:
            _refuse_unparsed(result, limits, wrapper=step > 2)
        raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)


def _refuse_unparsed(result: pq.PGresult, limits: ReadOnlyLimits, wrapper: bool) -> None:
    """What a failed Parse (or Describe) of the statement, or of the wrapper, means. Parse
    takes exactly one statement (extended query protocol)."""
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
    """Roll back what is still open; after a failure also drop session advisory locks the
    query may have taken (on success they were released inside the transaction)."""
    if raw.closed or raw.broken:
        return
    raw.rollback()
    if failed:
        _execute(backend, raw, conn, "readonly/release_session_locks")
        raw.rollback()
