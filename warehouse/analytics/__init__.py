"""Analytics over the warehouse: forecasts, anomalies, trends, bottlenecks, comparisons.

Each function takes either a :class:`~warehouse.Warehouse` plus what to analyse (a metric
with labels, or a recipe's run durations) or a DataFrame already in hand, and returns a
DataFrame. The methods live in one module each (forecast, anomalies, trends, bottlenecks,
compare) and need no database; :mod:`warehouse.analytics.sources` fetches their input.
Methods, assumptions and measured accuracy: docs/analytics.md.
"""

from __future__ import annotations

import pandas as pd

from warehouse.analytics import anomalies as _anomalies
from warehouse.analytics import bottlenecks as _bottlenecks
from warehouse.analytics import compare as _compare
from warehouse.analytics import forecast as _forecast
from warehouse.analytics import trends as _trends
from warehouse.analytics.slow_runs import slow_runs
from warehouse.analytics.sources import Selection, runs_of, series_frame
from warehouse.analytics.streaming import StreamingDetector

__all__ = ["Selection", "StreamingDetector", "anomalies", "backtest", "bottlenecks",
           "compare", "forecast", "slow_runs", "trends"]


def _frame(source, selection: Selection | None, kw: dict) -> pd.DataFrame:
    if isinstance(source, (pd.DataFrame, pd.Series)):
        return source
    return series_frame(source, selection or Selection(**kw))


def forecast(source, horizon: int = 24, *, selection: Selection | None = None,
             levels=(0.8, 0.95), season="auto", **select) -> pd.DataFrame:
    """Point forecast with 80% and 95% intervals, per series.

    ``forecast(wh, metric="latency_ms", every="1h", horizon=48)`` or
    ``forecast(wh, recipe="etl-daily")`` (run durations in seconds) or ``forecast(df)``.
    """
    frame = _frame(source, selection, select)
    if "key" in frame.columns and frame["key"].nunique() > 1:
        parts = {k: g[["ts", "value"]] for k, g in frame.groupby("key", sort=True)}
        return _forecast.forecast_many(parts, horizon, levels=levels, season=season)
    out = _forecast.forecast(frame[["ts", "value"]], horizon, levels=levels, season=season)
    if "key" in frame.columns and len(frame):
        out.insert(0, "key", frame["key"].iloc[0])
    return out


def backtest(source, horizon: int = 24, *, folds: int = 3,
             selection: Selection | None = None, **select) -> pd.DataFrame:
    """Rolling-origin MASE, sMAPE and interval coverage against seasonal-naive."""
    frame = _frame(source, selection, select)
    return _forecast.backtest(frame[["ts", "value"]], horizon, folds=folds)


def anomalies(source, *, selection: Selection | None = None, only_anomalies: bool = True,
              mode: str = "retrospective", **select) -> pd.DataFrame:
    """Anomalous points with a 0..1 score, a flag and a reason.

    ``mode="retrospective"`` (default): robust STL/MAD + IsolationForest over the whole
    history (looks both ways). ``mode="streaming"``: each point scored from the points
    before it only, as alerts see it (:class:`warehouse.analytics.streaming.StreamingDetector`).
    """
    detect = {k: select.pop(k) for k in ("contamination", "methods", "threshold", "period")
              if k in select}
    return _anomalies.anomalies(_frame(source, selection, select),
                                only_anomalies=only_anomalies, mode=mode, **detect)


def trends(source, *, selection: Selection | None = None, alpha: float = 0.05,
           **select) -> pd.DataFrame:
    """Slope per day with an autocorrelation-robust CI, and change points, per series."""
    return _trends.trends(_frame(source, selection, select), alpha=alpha)


def bottlenecks(source, recipe: str | None = None, start=None, end=None,
                steps: pd.DataFrame | None = None) -> pd.DataFrame:
    """Steps ranked by how much they hold the recipe's runs back (critical path, share of
    run time, slowdown), each with a recommendation citing the numbers."""
    if isinstance(source, pd.DataFrame):
        if steps is None:
            raise ValueError("give the runs' steps as steps=...")
        return _bottlenecks.bottlenecks(source, steps)
    if recipe is None:
        raise ValueError("give the recipe to analyse")
    runs, steps = runs_of(source, recipe, start, end, with_steps=True)
    return _bottlenecks.bottlenecks(runs, steps)


def compare(source, a, b, *, with_steps: bool = True) -> pd.DataFrame:
    """Compare two recipes, or two periods of one recipe: duration and failure-rate
    differences with significance tests and effect sizes.

    ``a``/``b``: a recipe name, a dict ``{"recipe": ..., "start": ..., "end": ...}`` or
    ``"recipe@START..END"``; with a DataFrame source, ``a`` and ``b`` are runs frames.
    """
    if isinstance(source, pd.DataFrame) or isinstance(a, pd.DataFrame):
        return _compare.compare(a, b)
    sides = []
    for spec in (a, b):
        spec = Selection.parse_period(spec)
        runs, steps = runs_of(source, spec["recipe"], spec.get("start"), spec.get("end"),
                              with_steps=with_steps)
        sides.append((spec["label"], runs, steps))
    (la, ra, sa), (lb, rb, sb) = sides
    if la == lb:
        la, lb = f"a: {la}", f"b: {lb}"
    return _compare.compare(ra, rb, labels=(la, lb), a_steps=sa, b_steps=sb)
