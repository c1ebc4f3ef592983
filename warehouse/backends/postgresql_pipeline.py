"""Statements that reach PostgreSQL in ONE round trip: a libpq pipeline.

A round trip costs ~0.04 ms to an idle local server and several ms on a busy machine; analyst
SQL (readonly_postgresql.py) sends its checks, its run and the end of its transaction
together. Each statement goes as its own extended-protocol messages (Parse, Bind, Execute),
so each is exactly one statement; the server skips every message after a failed one up to
the Sync that ends the pipeline.
"""

from __future__ import annotations

import select
from functools import lru_cache

import psycopg
from psycopg import pq

from warehouse.backends.base import BIND_PARAMETER


class Pipeline:
    """Statements that reach the server in ONE round trip (a libpq pipeline): each sent as
    its own extended-protocol messages (Parse takes exactly one statement), one Sync after
    the last. After a failed step the server skips every message up to the Sync, so a step
    runs only if all before it succeeded; its result then says PIPELINE_ABORTED."""

    def __init__(self, raw: psycopg.Connection):
        self._raw = raw
        self._encoding = raw.info.encoding
        self._steps: list[tuple[str, bytes | None, list | None]] = []

    def execute(self, sql: str, params: dict | None = None) -> None:
        """Run ``sql`` (``:name`` binds; the values go as text, typed by the server)."""
        query, names = _numbered(sql)
        values = [None if params[name] is None else str(params[name]).encode(self._encoding)
                  for name in names]
        self._steps.append(("execute", query.encode(self._encoding), values))

    def parse(self, sql: str) -> None:
        """Parse ``sql`` as the unnamed prepared statement, without running it."""
        self._steps.append(("parse", sql.encode(self._encoding), None))

    def describe(self) -> None:
        """Describe the unnamed prepared statement (its result columns)."""
        self._steps.append(("describe", None, None))

    def send(self) -> list[pq.PGresult]:
        """Send the steps and wait for their results, one per step, in order."""
        pgconn = self._raw.pgconn
        pgconn.enter_pipeline_mode()
        try:
            for kind, query, values in self._steps:
                if kind == "execute":
                    pgconn.send_query_params(query, values)
                elif kind == "parse":
                    pgconn.send_prepare(b"", query)
                else:
                    pgconn.send_describe_prepared(b"")
            pgconn.pipeline_sync()
            _flush(pgconn)
            results = []
            for _ in self._steps:
                results.append(_next_result(pgconn))
                if results[-1] is None or _next_result(pgconn) is not None:
                    raise psycopg.InterfaceError("unexpected results in a pipeline")
            end = _next_result(pgconn)
            if end is None or end.status != pq.ExecStatus.PIPELINE_SYNC:
                raise psycopg.InterfaceError("a pipeline did not end at its Sync")
            pgconn.exit_pipeline_mode()
        except BaseException:
            # Results left unread would reach the next user of this pooled connection.
            self._raw.close()
            raise
        return results


def _flush(pgconn: pq.PGconn) -> None:
    """Send what libpq has queued (the connection is non-blocking: psycopg's)."""
    while pgconn.flush():
        readable, _, _ = select.select([pgconn.socket], [pgconn.socket], [])
        if readable:
            pgconn.consume_input()


def _next_result(pgconn: pq.PGconn) -> pq.PGresult | None:
    """The next result, waited for in select() (which lets other threads run meanwhile)."""
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()
    return pgconn.get_result()


@lru_cache(maxsize=64)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """An SQL file's text with its ``:name`` binds as the protocol's ``$1, $2...``, and the
    names in that order."""
    names = tuple(dict.fromkeys(BIND_PARAMETER.findall(sql)))
    return (BIND_PARAMETER.sub(lambda found: f"${names.index(found.group(1)) + 1}", sql),
            names)
