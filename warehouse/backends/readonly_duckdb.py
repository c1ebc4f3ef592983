"""Analyst SQL on DuckDB, read-only by construction.

Why not a locked-down connection: DuckDB's ``enable_external_access``, ``lock_configuration``,
``allowed_directories`` and ``autoload_known_extensions`` are GLOBAL settings (of the database
instance, measured with ``duckdb_settings()`` on DuckDB 2.0.1), and once external access is
off it cannot be turned back on; the warehouse's own ingest (Arrow scans) and archive reader
(``read_parquet``) need it on. A second, locked-down ``duckdb.connect(path, read_only=True,
config=...)`` in the same process is refused ("Can't open a connection to same database file
with a different configuration than existing connections"). So the statement itself is
checked by DuckDB's parser, and run where it cannot write:

1. ``extract_statements``: exactly one statement, of type SELECT (so no COPY, EXPORT, SET,
   RESET, PRAGMA, LOAD, INSTALL, ATTACH, DETACH, CHECKPOINT, EXPLAIN [ANALYZE], DML, DDL).
2. ``json_serialize_sql`` parse tree, walked with fail-closed rules: query nodes are SELECT,
   set operations or recursive CTEs (a DELETE/INSERT/UPDATE inside WITH is refused); a table
   reference is a subquery, join, VALUES, or a relation that is an analyst relation, a system
   catalog view or a CTE in scope — a quoted path ('/etc/passwd', 'x.csv') is not a relation,
   so DuckDB's file replacement scans are never reached; table functions are the in-memory
   generators only (range, generate_series, unnest, json_each, json_tree) — no read_csv,
   read_text, read_blob, glob, read_parquet/parquet_scan, query(), checkpoint();
   functions must be loaded (an unknown name would autoload an extension) and not have
   effects (nextval, setval, setseed, write_log, sleep_ms). A statement that passed 1 and 2
   is remembered by its text until a migration changes the catalog (checking cost ~1 ms).
3. It runs on a connection of its own to the same database (``duplicate()``: no registered
   Python objects; one per pooled connection, made again after any error) inside
   ``BEGIN TRANSACTION READ ONLY`` — a write of any kind fails there — interrupted by a
   watchdog at the time limit, fetching at most the row cap + 1 rows, then rolled back.

Views are the warehouse's own (analysts cannot create any), so a view is not looked into:
``all_points`` reads the archive's Parquet files the warehouse listed in it.
"""

from __future__ import annotations

import heapq
import json
import re
import threading
import time
import uuid
import warnings
from datetime import timedelta

import duckdb
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, text

from warehouse.backends.readonly import (
    ANALYST_RELATIONS,
    ReadOnlyLimits,
    sql_error,
    strip_statement,
)
from warehouse.errors import ReadOnlyError

_QUERY_NODES = {"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE"}
_TABLE_REFS = {"BASE_TABLE", "JOIN", "SUBQUERY", "TABLE_FUNCTION", "EXPRESSION_LIST", "EMPTY",
               "EMPTY_FROM", "PIVOT", "SHOW_REF"}
_OTHER_TYPED = {"ORDER_DEFAULT", "ASCENDING", "DESCENDING", "INVALID"}  # ORDER BY entries
_TABLE_FUNCTIONS = {"range", "generate_series", "unnest", "json_each", "json_tree"}
_EFFECT_FUNCTIONS = {"nextval", "currval", "setval", "setseed", "write_log", "sleep_ms"}
_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog"}
_CATALOG = "readonly_catalog"  # key in backend.schema_facts
_VERDICTS = "readonly_verdicts"  # statements that passed the checks, in backend.schema_facts
_MAX_VERDICTS = 4096  # remembered statements before the memory starts over
_OWN = "readonly_connection"  # key in a pooled connection's info
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


def read_only_query(backend, conn: Connection, sql: str, params: dict,
                    limits: ReadOnlyLimits) -> pd.DataFrame:
    """Check and run one analyst statement (see the module docstring); ``:name`` binds take
    their values from ``params``."""
    sql_file = backend.sql
    statement, values = _bind(conn, strip_statement(sql), params)
    cursor = _own_connection(conn)
    clean = False
    try:
        # The verdict depends on the statement text and the catalog only, and the catalog
        # only changes by migrations (which clear schema_facts): a statement that passed
        # is remembered. Refusals are not, so each one is checked (and explained) again.
        verdicts = backend.schema_facts.setdefault(_VERDICTS, {})
        if statement not in verdicts:
            _check_statement_kind(statement)
            _check_tree(cursor, conn, backend, statement)
            if len(verdicts) >= _MAX_VERDICTS:
                verdicts.clear()
            verdicts[statement] = True
        frame, clean = _run(cursor, sql_file, statement, values, limits)
        return frame
    finally:
        if not clean:  # an error or an interrupt may have left it mid-transaction
            close_own_connection(conn.connection.info)


def _own_connection(conn: Connection):
    """A connection of its own to the same database, made once per pooled connection and
    kept in its ``info``: the caller's may hold registered Python objects (ingest's staging
    tables), and this one is interrupted at the time limit. Made again after any error
    (:func:`close_own_connection`); closed with the pooled connection (DuckDBBackend)."""
    info = conn.connection.info
    cursor = info.get(_OWN)
    if cursor is None:
        cursor = info[_OWN] = conn.connection.driver_connection.duplicate()
    return cursor


def close_own_connection(info: dict) -> None:
    """Close the connection :func:`_own_connection` kept in a pooled connection's ``info``."""
    cursor = info.pop(_OWN, None)
    if cursor is not None:
        try:
            cursor.close()
        except duckdb.Error:
            pass  # already closed with its database


def _bind(conn: Connection, sql: str, params: dict) -> tuple[str, list]:
    """``:name`` binds as DuckDB's numbered parameters, and their values in order."""
    compiled = text(sql).compile(dialect=conn.dialect)
    values = []
    for name in compiled.positiontup or ():
        if name not in params:
            raise sql_error(f"no value given for the bind parameter :{name}")
        values.append(_plain(params[name]))
    return str(compiled), values


def _check_statement_kind(statement: str) -> None:
    try:
        statements = duckdb.extract_statements(statement)
    except duckdb.Error as exc:
        raise sql_error(str(exc)) from None
    if len(statements) != 1:
        raise ReadOnlyError(f"exactly one statement may run here; got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise ReadOnlyError(f"only a SELECT statement may run here; got {kind.name}")


def _check_tree(cursor, conn: Connection, backend, statement: str) -> None:
    query, values = _bind(conn, backend.sql("readonly/serialize"), {"statement": statement})
    try:
        tree = json.loads(cursor.execute(query, values).fetchone()[0])
    except RecursionError:
        raise ReadOnlyError("the query is nested too deeply to be checked") from None
    if tree.get("error"):
        raise ReadOnlyError(f"not a plain query: {tree.get('error_message', 'unknown')}")
    # The catalog changes only by migrations (which clear schema_facts); listing the
    # functions costs ~50 ms, so both lists are remembered.
    catalog = backend.schema_facts.get(_CATALOG)
    if catalog is None:
        relations: dict[str, set[tuple[str, str]]] = {}
        for database, schema, name in cursor.execute(
                backend.sql("readonly/relations")).fetchall():
            relations.setdefault(name.lower(), set()).add((database.lower(), schema.lower()))
        functions = {row[0] for row in cursor.execute(
            backend.sql("readonly/functions")).fetchall()}
        catalog = backend.schema_facts[_CATALOG] = (relations, functions)
    try:
        _TreeCheck(*catalog).walk(tree["statements"], frozenset())
    except RecursionError:
        raise ReadOnlyError("the query is nested too deeply to be checked") from None


class _TreeCheck:
    """Walks a ``json_serialize_sql`` tree; raises ReadOnlyError at the first thing not allowed."""

    def __init__(self, relations: dict[str, set[tuple[str, str]]], functions: set[str]):
        self.relations = relations
        self.functions = functions

    def walk(self, node, ctes: frozenset) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(item, ctes)
            return
        if not isinstance(node, dict):
            return
        if "class" in node:  # an expression
            self._expression(node)
        elif isinstance(node.get("type"), str):
            kind = node["type"]
            if kind in _QUERY_NODES:
                self._query_node(node, ctes)
                return
            if kind.endswith("_NODE"):
                raise ReadOnlyError(f"only queries may run here; found a {_words(kind)}")
            if kind in _TABLE_REFS:
                self._table_ref(node, ctes)
                if kind == "TABLE_FUNCTION":  # its arguments were walked: the name is no
                    node = {k: v for k, v in node.items() if k != "function"}  # scalar
            elif not (kind.endswith("_MODIFIER") or kind in _OTHER_TYPED):
                raise ReadOnlyError(f"unsupported construct in read-only SQL: {_words(kind)}")
        for key, value in node.items():
            if key != "cte_map":
                self.walk(value, ctes)

    def _query_node(self, node: dict, ctes: frozenset) -> None:
        # A CTE is visible to the query that defines it and to the CTEs after it (and to
        # itself only when recursive); a name DuckDB would not bind to the CTE must pass the
        # relation check, so scopes here are never wider than DuckDB's.
        entries = (node.get("cte_map") or {}).get("map") or []
        inner = ctes
        for entry in entries:
            name = str(entry.get("key", "")).lower()
            body = (entry.get("value") or {}).get("query_node") or {}
            recursive = isinstance(body, dict) and body.get("type") == "RECURSIVE_CTE_NODE"
            self.walk(body, inner | {name} if recursive else inner)
            inner = inner | {name}
        for key, value in node.items():
            if key not in ("cte_map", "type"):
                self.walk(value, inner)

    def _table_ref(self, node: dict, ctes: frozenset) -> None:
        kind = node["type"]
        if kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            if name not in _TABLE_FUNCTIONS or function.get("schema") or function.get("catalog"):
                raise ReadOnlyError(
                    f"table function {name}() is not available in read-only SQL (it reads "
                    f"files, runs SQL text or changes state); allowed: "
                    f"{', '.join(sorted(_TABLE_FUNCTIONS))}")
            self.walk(function.get("arguments"), ctes)
        elif kind in ("BASE_TABLE", "SHOW_REF") and node.get("table_name"):
            self._relation(node, ctes)

    def _relation(self, node: dict, ctes: frozenset) -> None:
        name = str(node.get("table_name", ""))
        schema = str(node.get("schema_name") or "").lower()
        database = str(node.get("catalog_name") or "").lower()
        if not _PLAIN_NAME.match(name):
            raise ReadOnlyError(
                f"{name!r} is not a warehouse relation (files cannot be read from SQL here)")
        key = name.lower()
        if not schema and not database and key in ctes:
            return
        places = {(d, s) for d, s in self.relations.get(key, set())
                  if (not database or d == database) and (not schema or s == schema)}
        system = any(s in _SYSTEM_SCHEMAS or d == "system" for d, s in places)
        if places and (system or key in ANALYST_RELATIONS):
            return
        raise ReadOnlyError(
            f"relation {name!r} is not available to read-only SQL; use the documented views "
            f"and tables (docs/views.md)")

    def _expression(self, node: dict) -> None:
        if node.get("class") not in ("FUNCTION", "WINDOW"):
            return
        name = str(node.get("function_name", "")).lower()
        if name in _EFFECT_FUNCTIONS:
            raise ReadOnlyError(f"function {name}() changes state; not allowed in read-only SQL")
        if node["class"] == "FUNCTION" and name not in self.functions:
            raise ReadOnlyError(
                f"unknown function {name}() (extensions are not loaded by read-only SQL)")


def _run(cursor, sql_file, statement: str, values: list, limits: ReadOnlyLimits
         ) -> tuple[pd.DataFrame, bool]:
    """The statement's result, and whether ``cursor`` ended clean (rolled back, never
    interrupted) so it may run the next statement."""
    cursor.execute(sql_file("readonly/begin"))
    timer = _WATCHDOG.arm(limits.timeout_s, cursor.interrupt)
    clean = False
    try:
        result = cursor.execute(statement, values)
        columns = [d[0] for d in result.description or ()]
        types = [d[1] for d in result.description or ()]
        table = _fetch_arrow(result, limits.max_rows + 1)
    except duckdb.InterruptException:
        raise limits.timed_out() from None
    except duckdb.TransactionException as exc:
        raise ReadOnlyError(f"read-only SQL cannot write: {_first_line(exc)}") from None
    except duckdb.PermissionException as exc:
        raise ReadOnlyError(f"not allowed in read-only SQL: {_first_line(exc)}") from None
    except duckdb.Error as exc:
        if timer.fired:  # interrupted while DuckDB raised something else
            raise limits.timed_out() from None
        raise sql_error(str(exc)) from None
    finally:
        fired = _WATCHDOG.cancel(timer)
        try:
            cursor.rollback()
            clean = not fired
        except duckdb.Error:
            pass  # nothing to roll back: the transaction ended with an error
    if table.num_rows > limits.max_rows:
        raise limits.too_many_rows()
    return _arrow_frame(table, columns, types), clean


class _Deadline:
    __slots__ = ("due", "callback", "fired", "cancelled")

    def __init__(self, due: float, callback):
        self.due, self.callback, self.fired, self.cancelled = due, callback, False, False

    def __lt__(self, other: _Deadline) -> bool:
        return self.due < other.due


class _Watchdog:
    """One thread that interrupts statements at their time limit: a ``threading.Timer`` per
    statement started a thread each time (~6% of a small ``wh.sql``, py-spy)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[_Deadline] = []
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, callback) -> _Deadline:
        deadline = _Deadline(time.monotonic() + seconds, callback)
        with self._cond:
            heapq.heappush(self._heap, deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="wh-sql-watchdog",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        return deadline

    def cancel(self, deadline: _Deadline) -> bool:
        """Stop ``deadline``; whether it had fired already (its callback then ran or runs)."""
        with self._cond:
            deadline.cancelled = True
            return deadline.fired

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0].due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                deadline = heapq.heappop(self._heap)
                deadline.fired = True
            try:
                deadline.callback()
            except Exception:  # noqa: BLE001 - the statement's connection closed meanwhile
                pass


_WATCHDOG = _Watchdog()


def _fetch_arrow(result, limit: int) -> pa.Table:
    """At most about ``limit`` rows as Arrow batches: DuckDB hands over columns, not a Python
    tuple per row (2.6x faster on TSBS high-cpu-all, docs/tsbs.md); reading stops once the
    cap is passed, as fetchmany(cap + 1) did."""
    with warnings.catch_warnings():
        # "Arrow output on a DB-API result makes an extra copy": still far cheaper than a
        # Python object per value, and execute() keeps the interrupt/time-limit path.
        warnings.simplefilter("ignore", UserWarning)
        reader = result.to_arrow_reader(max(1, min(limit, _BATCH_ROWS)))
        batches, rows = [], 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows >= limit:
                break
    return pa.Table.from_batches(batches, schema=reader.schema)


def _plain_arrow(kind: pa.DataType) -> bool:
    """Arrow types whose pandas conversion matches the Python objects rows used to give
    (numbers, text, booleans, times, dates, decimals, bytes); other columns (intervals,
    lists, structs, maps) are converted value by value, as before."""
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_boolean(kind) or pa.types.is_timestamp(kind)
            or pa.types.is_date(kind) or pa.types.is_decimal(kind)
            or pa.types.is_binary(kind))


def _arrow_frame(table: pa.Table, columns: list[str], types: list[str]) -> pd.DataFrame:
    """The result as a DataFrame with the dtypes rows of Python objects gave before:
    integers int64, an all-NULL column None, UUIDs uuid.UUID, intervals timedelta."""
    data = []
    for i, field in enumerate(table.schema):
        chunked = table.column(i)
        kind = str(types[i]).upper() if i < len(types) else ""
        if chunked.null_count == len(chunked) and len(chunked):
            data.append(pd.Series([None] * len(chunked), dtype=object))
        elif kind == "UUID":
            data.append(pd.Series([None if v is None else uuid.UUID(v)
                                   for v in chunked.to_pylist()], dtype=object))
        elif pa.types.is_interval(field.type):
            data.append(pd.Series([None if v is None else timedelta(
                days=v.months * 30 + v.days, microseconds=v.nanoseconds // 1000)
                for v in chunked.to_pylist()]))
        elif pa.types.is_integer(field.type) and chunked.null_count == 0:
            data.append(pd.Series(chunked.to_numpy().astype("int64")))
        elif pa.types.is_timestamp(field.type) and field.type.tz is not None:
            data.append(pd.Series(_aware_times(chunked, field.type)))
        elif _plain_arrow(field.type):
            data.append(chunked.to_pandas())
        else:
            data.append(pd.Series(chunked.to_pylist(), dtype=object))
    if not data:
        frame = pd.DataFrame(index=range(table.num_rows))
        frame.columns = columns
        return frame
    # Built from the columns as they are (names may repeat: SELECT a, a): the dict
    # constructor's alignment pass and a second pass renaming the columns were a third of
    # a small answer's shaping (60 rows: ~0.6 ms).
    try:
        return pd.DataFrame._from_arrays([c.array for c in data], columns=pd.Index(columns),
                                         index=pd.RangeIndex(table.num_rows),
                                         verify_integrity=False)
    except (AttributeError, TypeError):  # a pandas without this private constructor
        frame = pd.DataFrame(dict(enumerate(data)))
        frame.columns = columns
        return frame


def _aware_times(chunked: pa.ChunkedArray, kind: pa.TimestampType):
    """A time zone aware timestamp column as pandas': its UTC instants, wrapped (Arrow's own
    conversion goes through a tz_localize/tz_convert pair: ~0.4 ms for any size)."""
    values = chunked.to_numpy()  # datetime64 in UTC; NULL as NaT
    dtype = pd.DatetimeTZDtype(kind.unit, kind.tz)
    try:
        return pd.arrays.DatetimeArray._simple_new(values, dtype=dtype)
    except (AttributeError, TypeError):  # a pandas without this private constructor
        return pd.array(values, dtype=dtype)


_BATCH_ROWS = 1_000_000


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _words(kind: str) -> str:
    return kind.lower().replace("_", " ")


def _plain(value):
    """A parameter DuckDB binds as-is: pandas Timestamps as datetimes."""
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value

