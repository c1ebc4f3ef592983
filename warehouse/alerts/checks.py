"""Checks of a rule on save that need the warehouse (docs/alerts.md, Rules): the metric
exists, a window is not shorter than the metric's data interval, SQL is accepted and
returns a ``value`` column. Field checks that need no data are in :mod:`.rules`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from warehouse.alerts import store
from warehouse.alerts.rules import Rule, RuleError

if TYPE_CHECKING:
    from warehouse.core import Warehouse


def check_against_data(wh: Warehouse, rule: Rule) -> None:
    """Checks on save that need the warehouse: the metric exists, a window is not shorter
    than the metric's data interval, SQL parses and returns a ``value`` column."""
    if rule.metric is not None:
        with wh.engine.connect() as conn:
            n = store.run(conn, wh, "metric_exists", {"metric": rule.metric}).scalar()
            recent = [store.aware(r[0]) for r in store.run(
                conn, wh, "metric_recent_ts", {"metric": rule.metric, "limit": 50})]
        if not n:
            raise RuleError(rule.name, "metric", f"unknown metric {rule.metric!r}")
        gaps = sorted((a - b).total_seconds() for a, b in zip(recent, recent[1:]) if a > b)
        window = rule.spec.get("window")
        if gaps and window:
            interval = gaps[len(gaps) // 2]
            if timedelta(microseconds=rule.us("window")).total_seconds() < interval:
                raise RuleError(rule.name, "window", f"{window} is shorter than the data "
                                f"interval of {rule.metric!r} (about {interval:g} s): "
                                "most windows would hold no point")
    if rule.kind == "sql":
        try:
            frame = wh.sql(rule.spec["query"], {"now": datetime.now(UTC)}
                           if ":now" in rule.spec["query"] else None)
        except Exception as exc:  # noqa: BLE001 - any refusal names the field
            raise RuleError(rule.name, "query", str(exc).splitlines()[0][:500]) from None
        if "value" not in frame.columns:
            raise RuleError(rule.name, "query", "the query must return a 'value' column")
