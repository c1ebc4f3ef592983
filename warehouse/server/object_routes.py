"""What the dashboards and alerts routes share: their refusals as problem+json naming the
field, JSON-ready values, and a file answer (exports).

The app's exception handlers (:mod:`.problems`) answer any DashboardError or RuleError as a
plain 400; these routes say more — 404 for a dashboard the caller may not see, 409 for an
edit that lost a race, 422 with ``errors: [{field, message}]`` for a document or rule that
does not validate — so each route is wrapped in :func:`answers_problems`.
"""

from __future__ import annotations

import functools
import math
import re
import tempfile
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from starlette.responses import Response

from warehouse.server import problems

#: Media type of each export format (GET .../data?format=).
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "json-split": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
    "html": "text/html; charset=utf-8",
}
_FIELD = re.compile(r"field '([^']+)'")
_VARIABLE = re.compile(r"variable '([^']+)'")


class Refusal(Exception):
    """A route's refusal: ``status``, ``detail`` and the problem ``kind`` (a type suffix)."""

    def __init__(self, status: int, detail: str, kind: str, **extra):
        super().__init__(detail)
        self.status, self.detail, self.kind, self.extra = status, detail, kind, extra


def answers_problems(route):
    """Wrap a (sync) route: a :class:`Refusal`, DashboardError or RuleError becomes its
    problem+json answer; anything else goes to the app's handlers as before."""
    from warehouse.alerts.rules import RuleError
    from warehouse.dashboards.definition import DashboardError

    @functools.wraps(route)
    def wrapper(*args, **kwargs):
        try:
            return route(*args, **kwargs)
        except Refusal as refusal:
            return problems.problem(refusal.status, refusal.detail, kind=refusal.kind,
                                    **refusal.extra)
        except RuleError as exc:
            return problems.problem(422, str(exc), kind="alert-rule", title="Invalid alert rule",
                                    rule=exc.rule, errors=[{"row": None, "field": exc.field,
                                                            "message": exc.message}])
        except DashboardError as exc:
            errors = [{"row": None, "field": _field_of(line), "message": line}
                      for line in exc.problems[:problems.MAX_ERRORS]]
            return problems.problem(422, str(exc), kind="dashboard", title="Invalid dashboard",
                                    errors=errors)

    return wrapper


def author_of(principal, given: str | None) -> str:
    """Who a change is recorded as: the caller; an admin may name someone else (a
    migration, a silence set for a colleague)."""
    if given and given != principal.name and principal.role != "admin":
        raise Refusal(403, "field 'author': only an admin may record a change as made by "
                           "someone else", "403")
    return given or principal.name


def _field_of(line: str) -> str:
    """The field a dashboard problem line names ("panel 'a' field 'query.agg': ...")."""
    found = _FIELD.search(line)
    if found:
        return found[1]
    variable = _VARIABLE.search(line)
    return f"variables.{variable[1]}" if variable else "document"


def jsonable(value):
    """A value as JSON can hold it: times ISO-8601, NaN as null, numpy scalars as Python."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    """A frame as JSON-ready records (nested values such as labels kept as objects)."""
    return [jsonable(row) for row in frame.to_dict(orient="records")]


def file_response(write, fmt: str, filename: str) -> Response:
    """The bytes ``write(path)`` puts in a file, as a download named ``filename``.

    The export writers take paths (pyarrow's CSV writer, openpyxl), so the file is made in a
    private temporary directory and read back."""
    with tempfile.TemporaryDirectory(prefix="wh-export-") as folder:
        path = Path(folder) / filename
        write(path)
        body = path.read_bytes()
    return Response(body, media_type=MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


__all__ = ["MEDIA_TYPES", "Refusal", "answers_problems", "author_of", "file_response", "jsonable", "records"]
