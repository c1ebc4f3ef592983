"""Every error the API answers is RFC 9457 problem+json: type, title, status, detail, and for
rejected input ``errors``: [{row, field, message}].

Warehouse errors map to statuses here, once: ValidationError 422, ReadOnlyError 403 (a
statement timeout or a result over the row cap: 400), UnknownNameError 404,
RetentionPolicyError 409, TransientError 503, other warehouse and value errors 400,
anything else 500 (logged, with the database password masked; the response says only
"internal error").
"""

from __future__ import annotations

import json
import logging
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from warehouse.client.wire import PROBLEM
from warehouse.errors import (
    QueryTimeoutError,
    ReadOnlyError,
    ResultTooLargeError,
    RetentionPolicyError,
    TransientError,
    UnknownNameError,
    ValidationError,
    WarehouseError,
)

log = logging.getLogger("warehouse.server")
TYPE_BASE = "https://recipe-warehouse.dev/problems/"  # documented in docs/server.md

#: For the OpenAPI schema: what every error response looks like.
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "row": {}, "field": {"type": "string"}, "message": {"type": "string"}}}},
    },
}
#: Longest ``detail`` (and error message) answered; most ``errors`` listed (``count`` says
#: how many rows were refused).
MAX_DETAIL = 2000
MAX_ERRORS = 100
_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 413: "Content too large",
           415: "Unsupported media type", 422: "Unprocessable content",
           500: "Internal server error", 503: "Service unavailable"}


class BodyTooLarge(StarletteHTTPException):
    """A request body over the limit (answered 413 problem+json)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than the limit of {limit} bytes")


class UnsupportedMediaType(ValueError):
    """A body of a type the endpoint does not take (answered 415)."""


class Redactor:
    """Masks secrets (the database password) in any text leaving the server."""

    def __init__(self, secrets=()):
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def problem(status: int, detail: str | None = None, *, kind: str | None = None,
            title: str | None = None, headers: dict | None = None, **extra) -> Response:
    """A problem+json response."""
    body = {"type": TYPE_BASE + (kind or str(status)), "title": title or _TITLES.get(
        status, "Error"), "status": status}
    if detail:
        body["detail"] = _clip(detail)
    body.update(extra)
    return Response(json.dumps(body, default=str, ensure_ascii=False), status_code=status,
                    media_type=PROBLEM, headers=headers)


def _clip(text: str) -> str:
    """A message quoting the caller's input (a 1 MB name) is not echoed back whole."""
    if len(text) <= MAX_DETAIL:
        return text
    return text[:MAX_DETAIL] + f"… ({len(text):,} characters, cut)"


def _row(value):
    return value if value is None or isinstance(value, (int, str)) else str(value)


def error_response(exc: BaseException, redact: Redactor) -> Response:
    """The problem response for an exception raised by a route or the warehouse."""
    if isinstance(exc, UnsupportedMediaType):
        return problem(415, str(exc), kind="media-type")
    if isinstance(exc, ValidationError):
        return problem(422, redact(str(exc)), kind="validation", title="Invalid input",
                       what=exc.what, count=exc.count,
                       errors=[{"row": _row(p.row), "field": _clip(str(p.field)),
                                "message": _clip(redact(p.message))}
                               for p in exc.problems[:MAX_ERRORS]])
    if isinstance(exc, QueryTimeoutError):
        return problem(400, redact(str(exc)), kind="sql-timeout", title="Statement timed out")
    if isinstance(exc, ResultTooLargeError):
        return problem(400, redact(str(exc)), kind="result-too-large",
                       title="Result over the row cap")
    if isinstance(exc, ReadOnlyError):
        return problem(403, redact(str(exc)), kind="read-only", title="Statement refused")
    if isinstance(exc, RetentionPolicyError):
        return problem(409, redact(str(exc)), kind="retention-policy",
                       title="Chunks must be archived first", table=exc.table,
                       chunks=exc.chunks, reasons=exc.reasons)
    if isinstance(exc, UnknownNameError):
        return problem(404, redact(str(exc)), kind="unknown-name", title="Unknown name")
    if isinstance(exc, DataError):
        # The database refused a value the caller sent (a NUL character, text that is not
        # a UUID): bad input, not a bug. Only the driver's first line: never the SQL.
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return problem(400, _clip(redact(f"a value the database cannot take: {first}")),
                       kind="bad-request")
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError)
                                             and exc.connection_invalidated):
        exc = TransientError(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
    if isinstance(exc, TransientError):
        return problem(503, redact(str(exc)), kind="unavailable",
                       title="Database unavailable", headers={"Retry-After": "1"})
    if isinstance(exc, MemoryError):
        # An answer too big to build (a query over a huge range): the caller's to narrow.
        return problem(400, "the answer is too large to build in memory; narrow the query",
                       kind="result-too-large", title="Result too large")
    if isinstance(exc, (WarehouseError, ValueError, TypeError)):
        # The warehouse's API raises these for bad arguments (an unknown aggregate, a
        # malformed interval); the message names the argument.
        return problem(400, redact(str(exc)), kind="bad-request")
    log.error("internal error: %s", redact("".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__))))
    return problem(500, "internal error (logged by the server)", kind="internal")


def http_error_response(exc: StarletteHTTPException, redact: Redactor) -> Response:
    """The problem response for an HTTPException (401, 403, 404, 429 ...)."""
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return problem(exc.status_code, redact(detail), headers=getattr(exc, "headers", None))


def install(app: FastAPI, redact: Redactor) -> None:
    """Answer every error of ``app`` as problem+json."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return http_error_response(exc, redact)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError):
        errors = []
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            where, field = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("request", ".".join(loc))
            errors.append({"row": None, "field": field or where, "in": where,
                           "message": redact(str(error.get("msg", "invalid")))})
        shown = "; ".join(f"{e['in']} {e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, f"invalid request: {shown}", kind="request-validation",
                       title="Invalid request", errors=errors)

    @app.exception_handler(WarehouseError)
    async def warehouse_error(request: Request, exc: WarehouseError):
        return error_response(exc, redact)

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError):
        return error_response(exc, redact)


class CatchAll:
    """ASGI middleware: any exception that escapes the app becomes a 500 problem here, logged
    with secrets masked — instead of reaching the server's own error log unmasked."""

    def __init__(self, app, redact: Redactor):
        self.app = app
        self.redact = redact

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            response = error_response(exc, self.redact)
            if not started:
                await response(scope, receive, send)
