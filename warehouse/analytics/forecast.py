"""Forecasts with prediction intervals and rolling-origin backtests: the public calls.

Pure functions over pandas objects (no database); measured accuracy and speed are in
``docs/analytics.md``. :func:`forecast` puts the series on a regular grid
(:mod:`~warehouse.analytics.forecast_grid`), detects a daily/weekly season
(:mod:`~warehouse.analytics.forecast_season`), fits additive ETS or STL + ETS
(:mod:`~warehouse.analytics.forecast_models`) and, with a season and enough history,
chooses among that model and seasonal naive/median/mean forecasts by rolling-origin
validation on the series itself (:mod:`~warehouse.analytics.forecast_select`), with
intervals calibrated from the backtest errors
(:mod:`~warehouse.analytics.forecast_intervals`). Constant and very short series have
fallbacks.
"""
from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from warehouse.analytics import forecast_select
from warehouse.analytics.forecast_grid import MIN_MODEL_POINTS, regularise_observed, to_series
from warehouse.analytics.forecast_intervals import normal_bounds, pct
from warehouse.analytics.forecast_models import fit_model, one_blas_thread
from warehouse.analytics.forecast_season import DAY, WEEK, detect_seasonality, resolve_season

__all__ = ["backtest", "detect_seasonality", "forecast", "forecast_many"]

# ETS fit time is set by optimizer iterations, not length, but older samples carry no
# weight in the forecast, so fitting on a recent window loses little (measured: docs).
_MAX_FIT_POINTS = 2000
_MAX_SMEAN = 7  # seasonal median/mean candidates use up to this many cycles
_MIN_FOLDS = 4  # validation windows the model choice is made on (at least)
_INTERVAL_FOLDS = 28  # validation windows the interval quantiles are taken from (at most)
_STL_MAX_PERIOD = 2016  # longest season the validated model fits (weekly at 5 minutes)


def forecast(df: pd.DataFrame | pd.Series, horizon: int, *,
             freq: str | pd.Timedelta | None = None, season: str | int = "auto",
             levels: Sequence[float] = (0.8, 0.95), nonnegative: bool | None = None,
             max_points: int = _MAX_FIT_POINTS, select: bool = True) -> pd.DataFrame:
    """Forecast one series ``horizon`` steps ahead with prediction intervals.

    Parameters
    ----------
    df : DataFrame or Series
        ``ts`` (tz-aware) and ``value`` columns, or a Series indexed by timestamps.
        Unsorted, duplicated, irregular or gappy timestamps are regularised.
    horizon : int
        Number of future steps.
    freq : str or Timedelta, optional
        Step to resample to; default the (snapped) median step of the data.
    season : "auto", "daily", "weekly", "none" or int
        Season to model; an int is a period in samples.
    levels : sequence of float
        Central prediction-interval levels, each giving ``lo_<pct>``/``hi_<pct>``.
    nonnegative : bool, optional
        Clip forecast and bounds at 0; default: when the history has no negative value
        (durations, counts, bytes).
    max_points : int
        Only the last ``max_points`` samples are fitted (speed), or more to hold 24
        cycles of a seasonal ETS (3 for STL).
    select : bool
        With a season and enough history, choose among the model, seasonal naive,
        seasonal medians and means, the weekly profile and their combination by
        rolling-origin validation on the series, with intervals calibrated from the validation errors
        (:mod:`warehouse.analytics.forecast_select`). False: the model alone.

    Returns
    -------
    DataFrame
        ``ts``, ``forecast``, ``lo_80``, ``hi_80``, ``lo_95``, ``hi_95`` (one pair per
        level) and ``model`` (e.g. "ETS(A,Ad,A)[24]", "STL[1440]+ETS(A,N,N)", "mean",
        "constant").
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    y, step, observed = regularise_observed(
        to_series(df), pd.Timedelta(freq) if freq is not None else None)
    values = y.to_numpy()
    mean, bounds, model, _ = _predict(values, horizon, step, season, levels, max_points,
                                      select, observed)
    if nonnegative if nonnegative is not None else bool(np.nanmin(values) >= 0):
        mean = np.maximum(mean, 0.0)
        bounds = {k: np.maximum(v, 0.0) for k, v in bounds.items()}
    out = pd.DataFrame({"ts": y.index[-1] + pd.TimedeltaIndex(step * np.arange(1, horizon + 1)),
                        "forecast": mean, **bounds})
    out["model"] = model
    return out


def forecast_many(frames: Mapping[Hashable, pd.DataFrame | pd.Series], horizon: int, *,
                  n_jobs: int = 2, **kwargs: Any) -> pd.DataFrame:
    """Forecast many series in parallel worker processes (joblib/loky).

    Parameters
    ----------
    frames : mapping of key -> DataFrame or Series
        One series per key, as accepted by :func:`forecast`.
    horizon : int
        Number of future steps.
    n_jobs : int
        Worker processes; 1 runs in this process.
    **kwargs
        Passed to :func:`forecast`.

    Returns
    -------
    DataFrame
        ``key`` then the columns of :func:`forecast`, series in the order given. A
        series whose forecast fails is left out with a ``RuntimeWarning`` naming it.
    """
    items = list(frames.items())
    if n_jobs == 1 or len(items) < 2:
        done = [_forecast_batch(items, horizon, kwargs)]
    else:
        from joblib import Parallel, delayed

        # a few large batches: each task ships its frames once, and per-task overhead
        # (~ms) stays small against ~0.1 s per series
        n_batches = min(len(items), 4 * n_jobs)
        batches = [items[i::n_batches] for i in range(n_batches)]
        done = Parallel(n_jobs=n_jobs, backend="loky")(
            delayed(_forecast_batch)(b, horizon, kwargs) for b in batches)
    by_key: dict[Hashable, pd.DataFrame] = {}
    for key, result in (pair for results in done for pair in results):
        if isinstance(result, str):
            warnings.warn(f"forecast of {key!r} failed: {result}", RuntimeWarning,
                          stacklevel=2)
        else:
            by_key[key] = result.assign(key=[key] * len(result))
    parts = [by_key[k] for k, _ in items if k in by_key]
    if not parts:
        bounds = [f"{side}_{pct(lv)}" for lv in kwargs.get("levels", (0.8, 0.95))
                  for side in ("lo", "hi")]
        return pd.DataFrame(columns=["key", "ts", "forecast", *bounds, "model"])
    out = pd.concat(parts, ignore_index=True)
    return out[["key", *[c for c in out.columns if c != "key"]]]


def _forecast_batch(items: list[tuple[Hashable, Any]], horizon: int,
                    kwargs: dict[str, Any]) -> list[tuple[Hashable, Any]]:
    out: list[tuple[Hashable, Any]] = []
    for key, frame in items:
        try:
            out.append((key, forecast(frame, horizon, **kwargs)))
        except Exception as exc:  # one bad series must not sink the other 499
            out.append((key, f"{type(exc).__name__}: {exc}"))
    return out


def backtest(df: pd.DataFrame | pd.Series, horizon: int, *, folds: int = 3,
             freq: str | pd.Timedelta | None = None, season: str | int = "auto",
             levels: Sequence[float] = (0.8, 0.95),
             max_points: int = _MAX_FIT_POINTS, select: bool = True) -> pd.DataFrame:
    """Rolling-origin evaluation of :func:`forecast` against a seasonal-naive baseline.

    The regularised series is cut at ``folds`` origins so that the test windows are
    the last ``folds * horizon`` samples, back to back; each fold fits (and detects the
    season) on everything before its origin only.

    Parameters
    ----------
    df : DataFrame or Series
        As for :func:`forecast`.
    horizon : int
        Test-window length in steps.
    folds : int
        Number of origins.
    freq, season, levels, max_points, select
        As for :func:`forecast`.

    Returns
    -------
    DataFrame
        One row per fold (``fold`` = 1..folds) and an ``"overall"`` row (mean of folds):
        ``fold``, ``origin`` (ts of the first forecast step), ``n_train``, ``horizon``,
        ``model``, ``period``, ``mase`` (MAE / in-sample seasonal-naive MAE of the
        training data), ``smape`` (percent, 0..200), ``coverage_<pct>`` per level,
        and the same errors for the seasonal-naive baseline as ``snaive_*`` (its
        intervals: residual sd * sqrt(cycles ahead), normal).
    """
    y, step, observed = regularise_observed(
        to_series(df), pd.Timedelta(freq) if freq is not None else None)
    x = y.to_numpy()
    if len(x) - folds * horizon < 2:
        raise ValueError(f"{len(x)} samples cannot hold {folds} folds of {horizon} "
                         "plus a training set")
    rows = []
    for fold in range(1, folds + 1):
        end = len(x) - (folds - fold + 1) * horizon
        train, test = x[:end], x[end:end + horizon]
        mean, bounds, model, period = _predict(train, horizon, step, season, levels,
                                               max_points, select, observed[:end])
        m = period if period and len(train) > period else 1
        naive_mean, naive_bounds = _seasonal_naive(train, horizon, m, levels)
        scale = float(np.mean(np.abs(train[m:] - train[:-m]))) if len(train) > m else 0.0
        row = {"fold": fold, "origin": y.index[end], "n_train": end, "horizon": horizon,
               "model": model, "period": period}
        # interpolated slots are not data: score the slots that held a sample
        seen = observed[end:end + horizon]
        for prefix, f, b in (("", mean, bounds), ("snaive_", naive_mean, naive_bounds)):
            row.update(_scores(test[seen], f[seen], {k: v[seen] for k, v in b.items()},
                               scale, levels, prefix))
        rows.append(row)
    out = pd.DataFrame(rows)
    metrics = [c for c in out.columns if "mase" in c or "smape" in c or "coverage" in c]
    overall = {"fold": "overall", "origin": out["origin"].iloc[0],
               "n_train": int(out["n_train"].iloc[-1]), "horizon": horizon,
               "model": ",".join(dict.fromkeys(out["model"])), "period": None,
               **out[metrics].mean().to_dict()}
    out["fold"] = out["fold"].astype(object)
    return pd.concat([out, pd.DataFrame([overall])], ignore_index=True)


def _scores(actual: np.ndarray, fc: np.ndarray, bounds: dict[str, np.ndarray], scale: float,
            levels: Sequence[float], prefix: str) -> dict[str, float]:
    err = np.abs(actual - fc)
    denom = np.abs(actual) + np.abs(fc)
    # sMAPE term is 0 when both actual and forecast are 0 (a perfect forecast)
    smape = 200 * np.mean(np.divide(err, denom, out=np.zeros_like(err), where=denom > 0))
    out = {f"{prefix}mase": float(np.mean(err) / scale) if scale > 0 else np.nan,
           f"{prefix}smape": float(smape)}
    for level in levels:
        tag = pct(level)
        inside = (actual >= bounds[f"lo_{tag}"]) & (actual <= bounds[f"hi_{tag}"])
        out[f"{prefix}coverage_{tag}"] = float(np.mean(inside))
    return out


def _seasonal_naive(train: np.ndarray, horizon: int, m: int,
                    levels: Sequence[float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    j = np.arange(horizon)
    mean = train[len(train) - m + (j % m)]
    resid = train[m:] - train[:-m]
    sd = float(np.sqrt(np.mean(resid**2))) if len(resid) else 0.0
    # Hyndman & Athanasopoulos (fpp3 5.5): sd_h = sd * sqrt(k + 1), k = whole cycles ahead
    width = sd * np.sqrt(j // m + 1)
    return mean, normal_bounds(mean, width**2, levels)


def _predict(y: np.ndarray, horizon: int, step: pd.Timedelta, season: str | int,
             levels: Sequence[float], max_points: int, select: bool = True,
             observed: np.ndarray | None = None
             ) -> tuple[np.ndarray, dict[str, np.ndarray], str, int | None]:
    """Forecast a regular gap-free array: (mean, bounds, model name, season period).

    ``observed`` marks the slots that held a sample (the others were interpolated):
    the model choice and the intervals are validated on observed slots only."""
    n = len(y)
    if n == 0:
        raise ValueError("no finite values to forecast")
    if np.ptp(y) <= 1e-12 * float(np.abs(y).max()):
        # a constant series has no error to estimate: a flat forecast and zero width
        mean = np.full(horizon, float(y[-1]))
        return mean, normal_bounds(mean, np.zeros(horizon), levels), "constant", None
    if n < MIN_MODEL_POINTS:
        # iid-normal prediction interval: mean +- t * sd * sqrt(1 + 1/n)
        mean = np.full(horizon, float(y.mean()))
        var = np.full(horizon, y.var(ddof=1) * (1 + 1 / n)) if n > 1 else np.zeros(horizon)
        return mean, normal_bounds(mean, var, levels, df=max(n - 1, 1)), "mean", None
    # detection sees up to 12 weeks: over fewer than ~4 cycles a random walk passes for
    # a season in ~10% of cases (1% at 5 cycles), and the cost is O(n)
    period = resolve_season(y[-max(max_points, 12 * (WEEK // step)):], step, season)
    # without a detected season (or with a weekly one too long for the history) the
    # naive candidates use the daily cycle: the forecast must not lose to "same time
    # yesterday" whatever the detector said
    day = DAY / step
    daily = int(round(day)) if day >= 2 and abs(day - round(day)) < 1e-9 else None
    # >= ~150 validation errors, and at least _MIN_FOLDS windows
    folds = min(max(6, _MIN_FOLDS), max(_MIN_FOLDS, -(-150 // horizon)))
    # the model is refitted per validation window and STL costs O(period x cycles)
    # (0.2 s at a weekly period of 1-minute data): past _STL_MAX_PERIOD the validated
    # model has the daily season, and the weekly profile is the seasonal medians' part
    model_period = daily if period and period > _STL_MAX_PERIOD and daily else period
    for cycle in dict.fromkeys([period, daily if season == "auto" else None]):
        if not (select and cycle):
            continue
        week = WEEK / step
        week = int(round(week)) if abs(week - round(week)) < 1e-9 and week > cycle else None
        recent = y[-max(max_points, 3 * (week or 0) + _INTERVAL_FOLDS * horizon,
                        (_MAX_SMEAN + 1) * cycle + _INTERVAL_FOLDS * horizon):]
        if len(recent) >= folds * horizon + max(2 * cycle, 10 + 2 * (cycle // 2)):
            cands = forecast_select.candidates(
                len(recent) - folds * horizon, horizon, cycle, week,
                lambda t, h: fit_model(t, h, model_period, max_points))
            seen = None if observed is None else observed[len(y) - len(recent):]
            with one_blas_thread():
                mean, bounds, name = forecast_select.choose(
                    recent, horizon, cands, folds, levels, interval_folds=_INTERVAL_FOLDS,
                    observed=seen)
            return mean, bounds, name, period
    mean, var, name = fit_model(y, horizon, period, max_points)
    return mean, normal_bounds(mean, var, levels), name, period
