"""Incremental evaluation on the change feed: only the rules a committed write touches, and
for the two commonest kinds an answer about just what the write changed (docs/alerts.md).

- :class:`RuleIndex` finds a change's rules by metric and by recipe, without looking at
  the others (1,000 rules, one write: a dictionary lookup per metric or recipe).
- Threshold rules with ``agg: last`` and no ``every`` are judged on the write's series only:
  their newest points from ``series_last`` by id, one statement for every such rule of
  every metric the write touched.
- ``run_failed`` rules are judged on the write's runs only: straight from the change when
  it says unambiguously which run has which status and recipe (one status, one recipe,
  started inside the window), else by one lookup of those run ids.

Such an outcome is *scoped* (:attr:`Outcome.scope`): it judges the label sets the write
touched and leaves the rule's other instances as they are; a series going stale or a run
leaving the window is a matter of time, judged by the rule's scheduled evaluation. Every
other rule a change touches is evaluated whole (:func:`kinds.evaluate_many`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from warehouse.alerts.kinds import RUN_LOOKBACK, Outcome, Sample
from warehouse.alerts.rules import Rule, compare
from warehouse.alerts.store import aware, run

if TYPE_CHECKING:
    from warehouse.core import Warehouse

POINT_KINDS = ("threshold", "anomaly", "forecast")
RUN_KINDS = ("run_failed", "run_duration", "dead_man")
#: Kinds evaluated first (cheap, and "a recipe failed" is the most urgent news).
QUICK_KINDS = (*RUN_KINDS, "step_error_rate")


class RuleIndex:
    """The enabled rules by what a write must touch for them to be evaluated."""

    def __init__(self, rules: Iterable[Rule]):
        self.by_metric: dict[str, list[Rule]] = defaultdict(list)
        self.by_recipe: dict[str, list[Rule]] = defaultdict(list)
        self.point, self.run, self.step, self.sql = [], [], [], []
        for rule in rules:
            if not rule.enabled:
                continue
            if rule.kind in POINT_KINDS:
                self.point.append(rule)
                self.by_metric[rule.metric].append(rule)
            elif rule.kind in RUN_KINDS:
                self.run.append(rule)
                if rule.recipe is not None:
                    self.by_recipe[rule.recipe].append(rule)
            elif rule.kind == "step_error_rate":
                self.step.append(rule)
            else:
                self.sql.append(rule)
        self.any_recipe = [r for r in self.run if r.recipe is None]

    def touched(self, changes: Iterable) -> list[Rule]:
        """The rules whose selection the committed writes ``changes`` may change, each once.
        A change without metrics or recipes (its lists did not fit a NOTIFY) touches every
        rule of its kind."""
        found: dict[str, Rule] = {}
        for change in changes:
            kind = getattr(change, "kind", None)
            if kind == "points":
                metrics = tuple(getattr(change, "metrics", ()) or ())
                rules = ([r for m in metrics for r in self.by_metric.get(m, ())]
                         if metrics else self.point)
            elif kind == "runs":
                recipes = tuple(getattr(change, "recipes", ()) or ())
                rules = ([r for c in recipes for r in self.by_recipe.get(c, ())] + self.any_recipe
                         if recipes else self.run) + self.step
            elif kind == "steps":
                rules = self.step
            else:
                rules = []
            found.update((r.name, r) for r in [*rules, *self.sql])
        return list(found.values())


def scoped(wh: Warehouse, rules: list[Rule], changes: list, now: datetime,
           labels_cache: dict) -> tuple[dict[str, tuple[Outcome, None]], list[Rule]]:
    """Scoped outcomes for the ``rules`` that can be judged on what ``changes`` carry, and
    the rules left to evaluate whole. ``labels_cache``: series id -> (metric, labels), kept
    by the caller (a series never changes its metric or labels)."""
    out: dict[str, tuple[Outcome, None]] = {}
    last_value = [r for r in rules if r.kind == "threshold" and r.spec["agg"] == "last"
                  and not r.spec.get("every")]
    failed = [r for r in rules if r.kind == "run_failed"]
    points = [c for c in changes if getattr(c, "kind", None) == "points"]
    runs = [c for c in changes if getattr(c, "kind", None) == "runs"]
    outcomes = None
    # A read that fails leaves its rules to the whole evaluation, where an error is each
    # rule's evaluation error (error_state), not the end of the round.
    try:
        if last_value and points and all(_carries(c, "series_ids") for c in points):
            ids = sorted({int(i) for c in points for i in c.series_ids})
            outcomes = threshold_on_series(wh, last_value, now, labels_cache, series_ids=ids)
        elif last_value and points and all(c.start is not None for c in points):
            # The ids did not fit the change (a big write heard by NOTIFY): the series it
            # wrote are among those whose newest point is not older than its earliest one.
            since = min(aware(c.start) for c in points)
            outcomes = threshold_on_series(wh, last_value, now, labels_cache, since=since)
    except Exception:  # noqa: BLE001 - see above
        outcomes = None
    out.update((name, (o, None)) for name, o in (outcomes or {}).items())
    if failed and runs and all(_carries(c, "run_ids") for c in runs):
        try:
            found = runs_of(wh, runs, now, failed)
        except Exception:  # noqa: BLE001 - as above
            found = None
        if found is not None:
            out.update((name, (o, None))
                       for name, o in run_failed_on_runs(failed, found, now).items())
    return out, [r for r in rules if r.name not in out]


def _carries(change, ids: str) -> bool:
    return not getattr(change, "truncated", False) and bool(getattr(change, ids, ()))


def threshold_on_series(wh: Warehouse, rules: list[Rule], now: datetime, labels_cache: dict,
                        *, series_ids: list[int] | None = None,
                        since: datetime | None = None) -> dict[str, Outcome] | None:
    """Threshold rules (agg last, no every) judged on the newest points of ``series_ids``,
    or of the rules' series whose newest point is at or after ``since``; None when one of
    them lies after ``now`` (a replay of the past, a clock ahead: the newest point is not
    the one to judge, the whole evaluation decides)."""
    with wh.engine.connect() as conn:
        if series_ids is not None:
            rows = run(conn, wh, "series_last_by_id", {"series_ids": series_ids}).all()
        else:
            rows = run(conn, wh, "series_last_since", {
                "metrics": sorted({r.metric for r in rules}), "since": since}).all()
    by_metric: dict[str, list[tuple[dict, datetime, float]]] = defaultdict(list)
    for series_id, metric, labels, ts, value in rows:
        ts = ts if getattr(ts, "tzinfo", None) is not None else aware(ts)
        if ts > now:
            return None
        if series_id not in labels_cache:
            if len(labels_cache) >= 200_000:
                labels_cache.clear()  # bounded: a cache, not a copy of the series table
            labels_cache[series_id] = json.loads(labels) if isinstance(labels, str) else labels
        by_metric[metric].append((labels_cache[series_id], ts, float(value)))
    out, starts = {}, {}
    for rule in rules:
        match = rule.spec.get("match") or {}
        series = by_metric.get(rule.metric, ())
        if match:
            series = [s for s in series if all(str(s[0].get(k)) == v for k, v in match.items())]
        if not series:
            continue  # the write touched none of this rule's series
        window = rule.spec["window"]
        if window not in starts:
            starts[window] = now - timedelta(microseconds=rule.us("window"))
        start = starts[window]
        op, threshold = rule.spec["op"], rule.spec["threshold"]
        fresh = [(labels, value) for labels, ts, value in series if ts >= start]
        out[rule.name] = Outcome(
            bool(fresh), [Sample(dict(labels), value) for labels, value in fresh
                          if compare(op, value, threshold)],
            scope=[labels for labels, _, _ in series])
    return out


def runs_of(wh: Warehouse, changes: list, now: datetime, rules: list[Rule]) -> list[tuple]:
    """The runs the ``changes`` wrote: ``(run_id, recipe, status, started_at, finished_at)``.

    From the change alone when it is unambiguous (one status, one recipe) and its runs
    started inside the narrowest window of ``rules`` and not after ``now``: written now,
    such a run finished (if it did) inside every window, so ``finished_at`` is None ("at or
    after started_at, by now"). Otherwise one lookup of the change's run ids."""
    narrowest = min(timedelta(microseconds=r.us("window")) for r in rules)
    widest = max(timedelta(microseconds=r.us("window")) for r in rules)
    out, lookup = [], []
    for change in changes:
        statuses, recipes = set(change.statuses), set(change.recipes)
        start, end = aware(change.start), aware(change.end)
        if len(statuses) == 1 and len(recipes) == 1 and start is not None \
                and start >= now - narrowest and end is not None and end <= now:
            out += [(str(rid), *recipes, *statuses, start, None) for rid in change.run_ids]
        else:
            lookup.append(change)
    if lookup:
        with wh.engine.connect() as conn:
            for change in lookup:
                rows = run(conn, wh, "runs_by_id", {
                    "run_ids": [str(r) for r in change.run_ids],
                    "start": aware(change.start) or now - widest - RUN_LOOKBACK,
                    "end": aware(change.end) or now}).all()
                out += [(rid, recipe, status, aware(started), aware(finished))
                        for rid, recipe, status, started, finished in rows]
    return out


def run_failed_on_runs(rules: list[Rule], runs: list[tuple], now: datetime
                       ) -> dict[str, Outcome]:
    """run_failed rules judged on ``runs`` (from :func:`runs_of`) with the conditions of
    the whole evaluation (runs_in_window.sql): failed, finished inside the window, started
    at most RUN_LOOKBACK before it."""
    out = {}
    for rule in rules:
        start = now - timedelta(microseconds=rule.us("window"))
        mine = [r for r in runs if rule.recipe is None or r[1] == rule.recipe]
        if not mine:
            continue
        samples = []
        for run_id, recipe, status, started, finished in mine:
            in_window = (finished is None  # runs_of: inside every window of the rules
                         or start <= finished <= now and start - RUN_LOOKBACK <= started <= now)
            if status == "failed" and in_window:
                samples.append(Sample({"recipe": recipe, "run_id": run_id}, 1.0, run_id))
        out[rule.name] = Outcome(True, samples,
                                 scope=[{"recipe": r[1], "run_id": r[0]} for r in mine])
    return out
