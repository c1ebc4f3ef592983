"""The dashboard document: a versioned, validated JSON definition (docs/dashboards.md).

A dashboard is data: title, description, variables (``recipe``, ``step``, a time range...)
and a grid of panels, each a query plus a visualisation. :func:`parse` turns a JSON object
into a :class:`Dashboard` or raises :class:`DashboardError` naming the panel and field of
every problem (``panel 'p95' field 'query.agg': unknown aggregate 'p96'``). The JSON Schema
published in the docs is :func:`json_schema`, generated from these models.

Variables are referenced as ``"$name"`` (a whole string value: replaced by the typed value)
in queries and ``${name}`` inside titles. SQL never has values formatted into it: its
``:name`` binds are bound from the variables of the same name.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warehouse.backends.base import AGGREGATES
from warehouse.dashboards.checks import sql_binds, sql_write_reason, walk_references
from warehouse.dashboards.problems import describe
from warehouse.errors import WarehouseError
from warehouse.timeparse import interval_us

SCHEMA_VERSION = 1
PANEL_TYPES = ("timeseries", "bar", "table", "stat", "heatmap", "gantt")
QUERY_KINDS = ("points", "runs", "steps", "view", "analytics", "sql")
VARIABLE_TYPES = ("recipe", "step", "string", "time", "number", "interval")
ANALYTICS_FUNCTIONS = ("forecast", "anomalies", "trends", "bottlenecks", "compare", "slow_runs")
STAT_REDUCERS = ("last", "first", "sum", "mean", "min", "max", "count")
FILLS = ("null", "previous", "linear", "zero")
GRID_COLUMNS = 24
MAX_PANELS = 64
MAX_ROWS = 100_000

#: The documented views (docs/views.md): columns, and the column a time range filters on
#: (with whether it is a DATE). Identifiers in a view query come only from this table.
VIEWS: dict[str, tuple[tuple[str, ...], str | None, bool]] = {
    "recipe_daily_stats": (("recipe", "day", "runs", "succeeded", "failed", "cancelled",
                            "running", "success_rate", "mean_duration_ms", "p50_duration_ms",
                            "p95_duration_ms", "p99_duration_ms"), "day", True),
    "step_stats": (("recipe", "step", "executions", "failed", "failure_rate",
                    "mean_duration_ms", "p50_duration_ms", "p95_duration_ms",
                    "mean_share_of_run", "retries"), None, False),
    "run_timeline": (("run_id", "recipe", "run_started_at", "step_id", "parent_step_id", "step",
                      "ordinal", "attempt", "status", "host", "start_offset_ms",
                      "end_offset_ms", "duration_ms"), "run_started_at", False),
    "error_patterns": (("error_type", "pattern", "occurrences", "runs_affected", "first_seen",
                        "last_seen", "recipes", "steps", "example"), None, False),
    "resource_usage": (("recipe", "step", "executions", "mean_cpu_s", "max_cpu_s",
                        "mean_peak_rss_bytes", "max_peak_rss_bytes", "total_read_bytes",
                        "total_written_bytes", "mean_read_bytes", "mean_written_bytes"),
                       None, False),
    "slow_runs": (("run_id", "recipe", "started_at", "status", "duration_ms", "trailing_p95_ms",
                   "trailing_runs", "slowdown"), "started_at", False),
    "series_latest": (("series_id", "metric", "labels", "ts", "value"), "ts", False),
}

_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
_PANEL_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_DASHBOARD_ID = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
_ORDER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?$", re.IGNORECASE)
Short = Annotated[str, Field(max_length=200)]
Text = Annotated[str, Field(max_length=4000)]



def _interval_or_variable(value):
    """An interval such as '1h' (checked now) or a ``$variable`` (checked when bound)."""
    if value is not None and not value.startswith("$"):
        try:
            interval_us(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bad interval {value!r}: {exc}") from None
    return value

class DashboardError(WarehouseError, ValueError):
    """A dashboard definition, variable or stored dashboard that cannot be used.

    ``problems`` lists each problem as one line naming the panel and field."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or [message]
        super().__init__(message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Grid(_Strict):
    """Where a panel sits on a 24-column grid (rows of any height)."""

    x: int = Field(0, ge=0, lt=GRID_COLUMNS)
    y: int = Field(0, ge=0, le=1000)
    w: int = Field(12, ge=1, le=GRID_COLUMNS)
    h: int = Field(8, ge=1, le=100)

    @model_validator(mode="after")
    def _fits(self):
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(f"x + w = {self.x + self.w} exceeds the {GRID_COLUMNS} grid columns")
        return self


class Variable(_Strict):
    """A value the viewer chooses; queries refer to it as ``"$name"``."""

    name: str = Field(pattern=_NAME)
    type: Literal[VARIABLE_TYPES] = "string"
    label: Short | None = None
    default: str | float | None = None
    required: bool = False
    options: list[Short] | None = Field(None, max_length=500)


Ref = Annotated[str, Field(max_length=500)]


class PointsQuery(_Strict):
    """``wh.points``: a metric's points, bucketed by ``every`` with ``agg`` (one or several)."""

    kind: Literal["points"]
    metric: Ref
    labels: dict[str, Ref | list[Ref]] = Field(default_factory=dict)
    every: Ref | None = None
    agg: Literal[AGGREGATES] | list[Literal[AGGREGATES]] = "mean"
    by: list[Annotated[str, Field(pattern=_NAME)]] | None = None
    fill: Literal[FILLS] | float | None = None
    start: Ref | None = "$start"
    end: Ref | None = "$end"

    @field_validator("agg")
    @classmethod
    def _aggs(cls, value):
        if isinstance(value, list) and not value:
            raise ValueError("give at least one aggregate")
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value):
        return _interval_or_variable(value)


class RunsQuery(_Strict):
    """``wh.runs``: runs of a recipe that started in [start, end)."""

    kind: Literal["runs"]
    recipe: Ref | None = "$recipe"
    status: Ref | None = None
    start: Ref | None = "$start"
    end: Ref | None = "$end"
    limit: int | None = Field(None, ge=1, le=MAX_ROWS)


class StepsQuery(_Strict):
    """``wh.steps``: step runs of a recipe's runs in [start, end), optionally one step."""

    kind: Literal["steps"]
    recipe: Ref = "$recipe"
    step: Ref | None = None
    start: Ref | None = "$start"
    end: Ref | None = "$end"


class ViewQuery(_Strict):
    """A documented view (docs/views.md) with equality filters, its time column limited to
    [start, end), ordering and a row limit."""

    kind: Literal["view"]
    view: Literal[tuple(VIEWS)]
    columns: list[str] | None = None
    filters: dict[str, Ref | float | None] = Field(default_factory=dict)
    start: Ref | None = "$start"
    end: Ref | None = "$end"
    order_by: list[str] = Field(default_factory=list, max_length=10)
    limit: int | None = Field(None, ge=1, le=MAX_ROWS)

    @model_validator(mode="after")
    def _known_columns(self):
        known = VIEWS[self.view][0]
        for field, names in (("columns", self.columns or []), ("filters", list(self.filters))):
            for name in names:
                if name not in known:
                    raise ValueError(f"{field}: view {self.view} has no column {name!r}; "
                                     f"its columns: {', '.join(known)}")
        for item in self.order_by:
            match = _ORDER.match(item.strip())
            if not match or match[1] not in known:
                raise ValueError(f"order_by: {item!r} is not 'COLUMN [asc|desc]' with a column "
                                 f"of {self.view}")
        return self


class PeriodSpec(_Strict):
    """One side of a comparison: a recipe and a period."""

    recipe: Ref = "$recipe"
    start: Ref | None = None
    end: Ref | None = None
    label: Short | None = None


class AnalyticsQuery(_Strict):
    """A call of :mod:`warehouse.analytics`: forecast, anomalies, trends (of a metric or a
    recipe's / step's durations), bottlenecks and slow_runs (of a recipe), compare (two
    periods)."""

    kind: Literal["analytics"]
    function: Literal[ANALYTICS_FUNCTIONS]
    recipe: Ref | None = None
    step: Ref | None = None
    metric: Ref | None = None
    labels: dict[str, Ref] = Field(default_factory=dict)
    every: Ref | None = None
    agg: Literal[AGGREGATES] = "mean"
    start: Ref | None = "$start"
    end: Ref | None = "$end"
    horizon: int = Field(24, ge=1, le=10_000)
    #: Read at most this much history before ``end`` (e.g. '14d'): a forecast of the next
    #: day needs weeks, not the whole range the dashboard shows.
    history: Ref | None = None
    a: PeriodSpec | None = None
    b: PeriodSpec | None = None
    #: Show at most this many rows of the result, in the order the function gives them
    #: (slow_runs: slowest first).
    limit: int | None = Field(None, ge=1, le=MAX_ROWS)

    @field_validator("history")
    @classmethod
    def _history(cls, value):
        return _interval_or_variable(value)

    @model_validator(mode="after")
    def _inputs(self):
        if self.function == "compare":
            if self.a is None or self.b is None:
                raise ValueError("compare needs both sides 'a' and 'b'")
        elif self.function in ("bottlenecks", "slow_runs"):
            if self.recipe is None:
                raise ValueError(f"{self.function} needs a recipe")
        elif (self.metric is None) == (self.recipe is None):
            raise ValueError(f"{self.function} needs a metric or a recipe (one of them)")
        return self


class SqlQuery(_Strict):
    """One read-only statement run through ``wh.sql``; ``:name`` binds come from variables."""

    kind: Literal["sql"]
    sql: str = Field(min_length=1, max_length=20_000)

    @field_validator("sql")
    @classmethod
    def _read_only(cls, value):
        reason = sql_write_reason(value)
        if reason:
            raise ValueError(reason)
        return value


Query = Annotated[PointsQuery | RunsQuery | StepsQuery | ViewQuery | AnalyticsQuery | SqlQuery,
                  Field(discriminator="kind")]


class Visual(_Strict):
    """How a panel draws its frame. Which fields apply depends on the panel type."""

    x: str | None = None
    y: list[str] | None = None
    series: str | None = None
    band: list[str] | None = Field(None, min_length=2, max_length=2)
    value: str | None = None
    reduce: Literal[STAT_REDUCERS] = "last"
    unit: Short | None = None
    z: str | None = None
    task: str | None = None
    start: str | None = None
    end: str | None = None
    color: str | None = None
    columns: list[str] | None = None
    stacked: bool = False
    orientation: Literal["v", "h"] = "v"


#: Fields each panel type needs in ``visual`` (the rest have defaults).
REQUIRED_VISUAL = {"heatmap": ("x", "y", "z"), "gantt": ("task", "start", "end"),
                   "bar": ("x",), "stat": ("value",)}


class Panel(_Strict):
    """One cell of the grid: a query and how to draw its result."""

    id: str = Field(pattern=_PANEL_ID)
    title: Short
    description: Text | None = None
    type: Literal[PANEL_TYPES]
    grid: Grid = Field(default_factory=Grid)
    query: Query
    visual: Visual = Field(default_factory=Visual)

    @model_validator(mode="after")
    def _visual_fits_type(self):
        for name in REQUIRED_VISUAL.get(self.type, ()):
            if getattr(self.visual, name) in (None, []):
                raise ValueError(f"visual.{name}: a {self.type} panel needs it")
        if self.type == "heatmap" and self.visual.y and len(self.visual.y) != 1:
            raise ValueError("visual.y: a heatmap takes one y column")
        return self


class Dashboard(_Strict):
    """A dashboard document (schema_version 1)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(pattern=_DASHBOARD_ID)
    title: Short
    description: Text | None = None
    tags: list[Short] = Field(default_factory=list, max_length=20)
    variables: list[Variable] = Field(default_factory=list, max_length=20)
    panels: list[Panel] = Field(default_factory=list, max_length=MAX_PANELS)

    def variable(self, name: str) -> Variable | None:
        """The declared variable ``name``, or None."""
        return next((v for v in self.variables if v.name == name), None)

    def panel(self, panel_id: str) -> Panel:
        """The panel with this id (DashboardError if there is none)."""
        for panel in self.panels:
            if panel.id == panel_id:
                return panel
        raise DashboardError(f"dashboard {self.id!r} has no panel {panel_id!r}")

    def to_json(self) -> dict:
        """The document as plain JSON data (what is stored, exported and published)."""
        # Every field, nulls included: an explicit null (no time filter) differs from an
        # absent field (the default "$start"), so the round trip must keep it.
        return self.model_dump(mode="json")


# -- parsing and validation ------------------------------------------------------------------
def parse(document: dict | str | bytes | Dashboard) -> Dashboard:
    """Validate a dashboard document (a dict or JSON text) into a :class:`Dashboard`.

    Raises :class:`DashboardError` listing every problem, each naming the panel and field.
    """
    if isinstance(document, Dashboard):
        document = document.to_json()
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise DashboardError(f"dashboard: not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DashboardError(f"dashboard: expected a JSON object, got {type(document).__name__}")
    try:
        dashboard = Dashboard.model_validate(document)
    except pydantic.ValidationError as exc:
        described = (describe(error, document, QUERY_KINDS) for error in exc.errors())
        problems = list(dict.fromkeys(p for p in described if p))
        raise _error(document, problems) from None
    problems = _semantic_problems(dashboard)
    if problems:
        raise _error(document, problems)
    return dashboard


def _error(document: dict, problems: list[str]) -> DashboardError:
    name = document.get("id") if isinstance(document.get("id"), str) else "?"
    shown = "; ".join(problems[:8]) + (f" (and {len(problems) - 8} more)" if len(problems) > 8
                                       else "")
    return DashboardError(f"dashboard {name!r}: {shown}", problems)


def _semantic_problems(dashboard: Dashboard) -> list[str]:
    problems: list[str] = []
    names = [v.name for v in dashboard.variables]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"variable {name!r}: declared twice")
    for var in dashboard.variables:
        if var.options and var.default is not None and str(var.default) not in var.options:
            problems.append(f"variable {var.name!r} field 'default': {var.default!r} is not "
                            f"one of its options")
    declared = set(names)
    for _field, name in walk_references({"title": dashboard.title}, ""):
        if name not in declared:
            problems.append(f"field 'title': unknown variable ${name}")
    ids = [p.id for p in dashboard.panels]
    for panel_id in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"panel {panel_id!r}: id used twice")
    for panel in dashboard.panels:
        query = panel.query.model_dump(exclude_none=True)
        for field, name in walk_references(query, "query"):
            if name not in declared:
                problems.append(f"panel {panel.id!r} field {field!r}: unknown variable "
                                f"${name}; declared: {', '.join(names) or 'none'}")
        for _field, name in walk_references({"title": panel.title}, ""):
            if name not in declared:
                problems.append(f"panel {panel.id!r} field 'title': unknown variable ${name}")
        if isinstance(panel.query, SqlQuery):
            for name in sql_binds(panel.query.sql):
                if name not in declared:
                    problems.append(f"panel {panel.id!r} field 'query.sql': bind :{name} is "
                                    f"not a variable; declared: {', '.join(names) or 'none'}")
    return problems


def json_schema() -> dict:
    """The JSON Schema of a dashboard document (published in docs/dashboards.md)."""
    schema = Dashboard.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://recipe-analytics-warehouse/schemas/dashboard-v1.json"
    return schema


__all__ = ["ANALYTICS_FUNCTIONS", "PANEL_TYPES", "QUERY_KINDS", "SCHEMA_VERSION", "VIEWS",
           "Dashboard", "DashboardError", "Panel", "Variable", "json_schema", "parse"]
