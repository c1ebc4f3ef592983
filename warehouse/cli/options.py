"""Options every command shares (``--url``, ``--format``, ``--limit``, ``--debug``), opening
the warehouse for a command, and turning errors into one line with a hint.

Kept light on purpose: only click is imported at module level, so ``warehouse --help``
stays fast; pandas, SQLAlchemy and the drivers load when a command runs.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

import click

#: Keys in ``click.Context.meta`` (shared by a command and its parent groups).
URL_KEY = "warehouse.url"
DEBUG_KEY = "warehouse.debug"
URL_HELP = "Database URL (default: WAREHOUSE_URL, else duckdb:///warehouse.duckdb)."


def _remember(key: str):
    def callback(ctx: click.Context, _param, value):
        # A value given after the command name wins over one given on the group.
        if value is not None and value is not False:
            ctx.meta[key] = value
        return value

    return callback


def url_option(command: Callable) -> Callable:
    """``--url`` on a command that opens a database (WAREHOUSE_URL is read by the group)."""
    return click.option("--url", default=None, expose_value=False, help=URL_HELP,
                        callback=_remember(URL_KEY))(command)


def debug_option(command: Callable) -> Callable:
    """``--debug``: the full traceback on error instead of one line."""
    return click.option("--debug", is_flag=True, default=None, expose_value=False,
                        help="Show the full traceback on error.",
                        callback=_remember(DEBUG_KEY))(command)


def database_command(command: Callable) -> Callable:
    """``--url`` and ``--debug`` for a command that opens the warehouse."""
    return url_option(debug_option(command))


def format_option(command: Callable) -> Callable:
    """``--format table|csv|json`` (exposed as ``fmt``)."""
    return click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
                        default="table", show_default=True,
                        help="Output format; csv and json round-trip (UUIDs as text, labels "
                             "as JSON, times ISO-8601 UTC with µs).")(command)


def limit_option(what: str = "rows") -> Callable:
    """``--limit N``: default 1000 for table output, everything for csv/json; 0 = all."""
    return click.option("--limit", type=click.IntRange(min=0), default=None,
                        help=f"Show at most this many {what} (default: 1000 for table output, "
                             f"all for csv/json; 0 = all).")


def effective_limit(limit: int | None, fmt: str) -> int | None:
    """The row limit in force: ``None`` means no limit."""
    if limit is None:
        return 1000 if fmt == "table" else None
    return limit or None


def parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    """``("a=1", "b=2")`` -> ``{"a": "1", "b": "2"}``; a pair without ``=`` is a usage error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected NAME=VALUE", param_hint=what)
        out[key] = value
    return out


def command_url(ctx: click.Context) -> str | None:
    """The URL given with ``--url`` (after the command or on the group), else None."""
    return ctx.meta.get(URL_KEY)


def open_warehouse(ctx: click.Context, *, create: bool = False, migrate: bool = True):
    """The Warehouse for this command, closed when the command ends.

    Read commands pass ``create=False``: a misspelled DuckDB path must not make an empty
    warehouse. Commands that load data (init, ingest, import, replay, demo) may create one.
    """
    from warehouse.core import Warehouse

    wh = Warehouse(command_url(ctx), create=create, migrate=migrate)
    ctx.call_on_close(wh.close)
    return wh


# -- errors ---------------------------------------------------------------------------------
_DRIVER_MODULES = {"sqlalchemy", "duckdb", "_duckdb", "psycopg", "psycopg2"}


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _is_driver_error(exc: BaseException) -> bool:
    return any(cls.__module__.split(".")[0] in _DRIVER_MODULES for cls in type(exc).__mro__)


def _backend_class(url: str | None):
    from sqlalchemy.engine import make_url

    from warehouse.backends.base import backend_class
    from warehouse.config import database_url

    return backend_class(make_url(database_url(url)).get_backend_name())


def _shown_url(url: str | None) -> str:
    from sqlalchemy.engine import make_url

    from warehouse.config import database_url

    return make_url(database_url(url)).render_as_string(hide_password=True)


def _served_at(url: str | None) -> str | None:
    """The URL of the ``warehouse serve`` that owns the embedded file ``url`` names, if any."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from warehouse.backends.paths import serving_url
    from warehouse.config import database_url

    name = make_url(database_url(url)).database
    return serving_url(Path(name).resolve()) if name and name != ":memory:" else None


def _is_http(url: str | None) -> bool:
    from warehouse.config import database_url

    return database_url(url).split("://", 1)[0].lower() in ("http", "https")


def describe_error(exc: BaseException, url: str | None, command: str | None) -> str:
    """One line saying what went wrong and, for everyday mistakes, what to do about it."""
    from warehouse.errors import TerminalError, TransientError, WarehouseError

    sql_hint = "check the SQL; the documented views are in docs/views.md"
    if isinstance(exc, TransientError) and _is_http(url):
        return (f"cannot reach {_shown_url(url)}: {_one_line(str(exc))} — is `warehouse serve` "
                f"running there? (--url or WAREHOUSE_URL); try again once it is up")
    if _is_driver_error(exc) or isinstance(exc, TransientError):
        try:
            backend = _backend_class(url)
        except Exception:  # noqa: BLE001 - a URL we cannot even parse
            return f"{_one_line(str(exc))} — check the URL (--url or WAREHOUSE_URL)"
        problem = backend.classify(exc)
        detail = _one_line(str(problem)) or type(exc).__name__
        if isinstance(problem, TransientError):
            if backend.capabilities.single_writer:
                served = _served_at(url)
                if served:
                    return (f"cannot open {_shown_url(url)}: `warehouse serve` owns it at "
                            f"{served} — go through it: --url {served} (or WAREHOUSE_URL="
                            f"{served}, with WAREHOUSE_TOKEN if it asks for a login)")
                return (f"cannot open {_shown_url(url)}: {detail} — is another process "
                        f"(warehouse serve?) holding it? Stop it or go through its API")
            return (f"cannot reach {_shown_url(url)}: {detail} — is the server running and "
                    f"the URL right? (--url or WAREHOUSE_URL); try again once it is up")
        if command == "sql":
            return f"the database refused the statement: {detail} — {sql_hint}"
        return f"the database refused it: {detail}"
    if isinstance(exc, TerminalError) and command == "sql":
        return f"{_one_line(str(exc))} — {sql_hint}"
    if isinstance(exc, (WarehouseError, ValueError, KeyError, LookupError, OSError)):
        text = _one_line(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args
                         else str(exc))
        return text or type(exc).__name__
    return (f"internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            f"(run again with --debug for the traceback)")


def report_error(ctx: click.Context, exc: BaseException) -> None:
    """Print ``exc`` as one line on stderr (the traceback with --debug) and exit 1."""
    if ctx.meta.get(DEBUG_KEY) or os.environ.get("WAREHOUSE_DEBUG") == "1":
        traceback.print_exception(exc, file=sys.stderr)
    else:
        sub = ctx.invoked_subcommand if ctx.invoked_subcommand else ctx.info_name
        from warehouse.cli.output import printable

        click.echo(printable(f"error: {describe_error(exc, command_url(ctx), sub)}"), err=True)
    ctx.exit(1)
