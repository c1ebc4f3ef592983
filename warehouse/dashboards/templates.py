"""The built-in dashboards: JSON documents shipped in ``templates/``, parameterised by
``recipe`` (and ``step`` where it applies) and a time range."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from warehouse.dashboards.definition import Dashboard, DashboardError, parse

BUILT_IN = ("performance-overview", "resource-utilisation", "error-analysis", "trend-analysis")


@cache
def _text(name: str) -> str:
    return resources.files("warehouse.dashboards").joinpath(
        "templates", f"{name}.json").read_text(encoding="utf-8")


def template(name: str) -> Dashboard:
    """The built-in dashboard ``name`` (one of :data:`BUILT_IN`), validated."""
    if name not in BUILT_IN:
        raise DashboardError(f"no built-in dashboard {name!r}; built-ins: {', '.join(BUILT_IN)}")
    return parse(json.loads(_text(name)))


def templates() -> list[Dashboard]:
    """Every built-in dashboard."""
    return [template(name) for name in BUILT_IN]


__all__ = ["BUILT_IN", "template", "templates"]
