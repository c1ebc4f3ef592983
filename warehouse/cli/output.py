"""Printing results: DataFrames and mappings as a table, CSV or JSON, and progress bars.

CSV and JSON carry the same plain values so that both round-trip: UUIDs as text, dicts and
lists (labels, params) as JSON text in both (one column keeps one type); times as ISO-8601
UTC with microseconds
(``2026-11-20T00:00:00.000000+00:00``), dates as ``YYYY-MM-DD``, durations as ISO-8601
durations, missing values as JSON null / an empty CSV field. Tables, notes and progress go
to stderr or stdout as a person reads them; CSV and JSON go to stdout only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import pandas as pd

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def printable(text: str) -> str:
    """``text`` safe to put on a terminal: control characters (ESC, BEL, C1 codes, newlines)
    shown escaped, so data read from the warehouse cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def plain_value(value: Any) -> Any:
    """One value as JSON can carry it (and CSV write it the same way)."""
    import numpy as np
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, np.datetime64)):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.strftime(TIME_FORMAT)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, dt.timedelta, np.timedelta64)):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (Mapping, list, tuple, set, np.ndarray)):
        return json.dumps(_nested(value), sort_keys=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.dumps(_nested(dataclasses.asdict(value)), sort_keys=True)
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)


def _nested(value: Any) -> Any:
    """Dicts and lists kept as structure, their leaves made plain (inside JSON text)."""
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): _nested(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [_nested(v) for v in value]
    return plain_value(value)


def plain_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` holding only str, int, float, bool and None (object columns)."""
    import numpy as np
    import pandas as pd

    out = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
                column.dtype):
            stamps = pd.to_datetime(column, utc=True)
            text = stamps.dt.strftime(TIME_FORMAT)
            out[str(name)] = text.astype(object).where(stamps.notna(), None)
        elif isinstance(column.dtype, np.dtype) and column.dtype.kind in "biu":
            out[str(name)] = column.astype(object)  # numpy bool/int: never missing
        elif isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
            values = column.to_numpy()
            out[str(name)] = column.astype(object).where(np.isfinite(values), None)
        else:
            out[str(name)] = pd.Series([plain_value(v) for v in column.tolist()],
                                       index=frame.index, dtype=object)
    return pd.DataFrame(out, index=frame.index, columns=[str(c) for c in frame.columns])


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as plain dicts (what ``--format json`` prints)."""
    plain = plain_frame(frame)
    return [dict(zip(plain.columns, row)) for row in plain.itertuples(index=False, name=None)]


def to_json(value: Any) -> str:
    """JSON text of a frame (records), a mapping or a list; strict (no NaN)."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return json.dumps(records(value), ensure_ascii=False, allow_nan=False)
    return json.dumps(_nested(value), ensure_ascii=False, allow_nan=False)


def note(text: str) -> None:
    """A line for the person at the terminal (stderr): never mixed into CSV/JSON output."""
    click.echo(printable(text), err=True)


def show_frame(frame: pd.DataFrame, fmt: str, *, title: str | None = None,
               limit: int | None = None) -> None:
    """Print ``frame`` as a table, CSV or JSON; ``limit`` rows at most (with a note)."""
    total = len(frame)
    if limit is not None and total > limit:
        frame = frame.head(limit)
    if fmt == "json":
        click.echo(to_json(frame))
    elif fmt == "csv":
        click.echo(plain_frame(frame).to_csv(index=False), nl=False)
    else:
        _rich_table(frame, title)
    if limit is not None and total > limit:
        note(f"showing the first {limit:,} of {total:,} rows; --limit 0 shows them all "
             f"(or --format csv|json, which prints every row)")


def _rich_table(frame: pd.DataFrame, title: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    # Text, not str: rich would read "[...]" in data as markup (and fail on "[/]").
    table = Table(title=Text(printable(title)) if title else None, show_lines=False)
    for column in frame.columns:
        table.add_column(Text(printable(str(column))), overflow="fold")
    for row in plain_frame(frame).itertuples(index=False, name=None):
        table.add_row(*[Text("" if v is None else printable(str(v))) for v in row])
    console().print(table)


def show_mapping(mapping: Mapping[str, Any], fmt: str, *, title: str | None = None) -> None:
    """Print one result (a dict or dataclass): JSON object, one-row CSV, or name/value lines."""
    import pandas as pd

    if dataclasses.is_dataclass(mapping) and not isinstance(mapping, type):
        mapping = dataclasses.asdict(mapping)
    if fmt == "json":
        click.echo(to_json(dict(mapping)))
    elif fmt == "csv":
        row = {k: plain_value(v) for k, v in mapping.items()}
        click.echo(pd.DataFrame([row], columns=list(row)).to_csv(index=False), nl=False)
    else:
        if title:
            click.echo(printable(title))
        width = max((len(str(k)) for k in mapping), default=0)
        for key, value in mapping.items():
            shown = plain_value(value)
            click.echo(printable(f"{str(key).ljust(width)}  {'' if shown is None else shown}"))


def console():
    """A rich console on stdout (made per use: tests swap sys.stdout between commands)."""
    from rich.console import Console

    return Console()


def progress_bar():
    """A rich progress bar on stderr, for long work (ingest, import, restore...)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    err = Console(stderr=True)
    # Only for a person at a terminal, and gone once done: the result line (or the one-line
    # error) is what stays; pipes and logs get no bar frames.
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err, transient=True,
                    disable=not err.is_terminal)


def spinner(text: str):
    """A status spinner on stderr for work that does not report its progress."""
    from rich.console import Console

    return Console(stderr=True).status(text)
