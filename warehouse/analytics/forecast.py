"""Forecasts with prediction intervals, seasonality detection and rolling-origin backtests.

Pure functions over pandas objects (no database); measured accuracy and speed are in
``docs/analytics.md``. :func:`forecast` regularises the series onto its median step,
detects a daily/weekly season (:func:`detect_seasonality`), fits additive ETS
(statsmodels ``ETSModel``; no trend vs damped trend by AICc; the season as ETS state
up to ``_ETS_MAX_PERIOD`` samples, else STL + ETS) on a recent window, and returns
its analytic prediction intervals. Constant and very short series have fallbacks.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["backtest", "detect_seasonality", "forecast", "forecast_many"]

_DAY = pd.Timedelta(days=1)
_WEEK = pd.Timedelta(days=7)
# Median steps within 1% of one of these are snapped to it, so that jittered hourly
# samples give exactly 24 samples a day instead of 23.9.
_ROUND_STEPS = [pd.Timedelta(s) for s in (
    "1s", "5s", "10s", "15s", "30s", "1min", "2min", "5min", "10min", "15min", "20min",
    "30min", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1D", "7D")]
_MIN_MODEL_POINTS = 10  # below: mean forecast with Student-t intervals (ETS needs >= 10)
_HEURISTIC_MIN_POINTS = 100  # from here on ETS initial states come from the data, not MLE
# ETS fit time is set by optimizer iterations, not length, but older samples carry no
# weight in the forecast, so fitting on a recent window loses little (measured: docs).
_MAX_FIT_POINTS = 2000
_ETS_MAX_PERIOD = 168  # longer seasons (e.g. 1440 at 1-min) -> STL + non-seasonal ETS
_ETS_FIT_CYCLES = 24  # seasonal ETS fits at least this many cycles when available
_SEASON_THRESHOLD = 0.2  # adjusted share of detrended variance the season must explain
_NESTED_GAIN = 0.05  # weekly must explain this much more than daily to be chosen
_MAX_GAP = 6  # samples; longer gaps cut the history (see _regularise)
_SEASONS = ("daily", "weekly")
_MAX_SMEAN = 7  # seasonal median/mean candidates use up to this many cycles
_MIN_FOLDS = 4  # validation windows the model choice is made on (at least)
_INTERVAL_FOLDS = 28  # validation windows the interval quantiles are taken from (at most)


def detect_seasonality(values: pd.Series | pd.DataFrame, *,
                       threshold: float = _SEASON_THRESHOLD) -> dict[str, Any]:
    """Infer the sampling step and the season (daily, weekly or none) of a series.

    The series is regularised onto its median step; a candidate season (1 day or 7
    days, a whole number >= 2 of samples, at least two cycles observed) is scored by
    its *strength*: the adjusted R^2 of per-phase means on the detrended series (0 for
    noise whatever the length, 1 for a pure repeating pattern). Weekly is chosen over
    daily only when it explains clearly more, so hourly data with a daily cycle is
    daily and data with a weekday/weekend pattern is weekly (period 168 also
    carries the daily shape).

    Parameters
    ----------
    values : Series or DataFrame
        Series indexed by timestamps, or a DataFrame with ``ts`` and ``value``.
    threshold : float
        Minimum strength for a season.

    Returns
    -------
    dict
        ``step`` (Timedelta), ``season`` ("daily", "weekly" or "none"), ``period``
        (samples per season, None for none) and ``strength`` (of the chosen season,
        or the best candidate's when none qualifies; 0.0 without candidates).
    """
    y, step = _regularise(_to_series(values), None)
    season, period, strength = _detect(y.to_numpy(), step, threshold)
    return {"step": step, "season": season, "period": period, "strength": strength}


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
        seasonal means and MSTL (daily + weekly) by rolling-origin validation on the
        series, with intervals calibrated from the validation errors
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
    y, step, observed = _regularise_observed(
        _to_series(df), pd.Timedelta(freq) if freq is not None else None)
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
        bounds = [f"{side}_{_pct(lv)}" for lv in kwargs.get("levels", (0.8, 0.95))
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
    y, step, observed = _regularise_observed(
        _to_series(df), pd.Timedelta(freq) if freq is not None else None)
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
        tag = _pct(level)
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
    return mean, _bounds(mean, width**2, levels)


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
        return mean, _bounds(mean, np.zeros(horizon), levels), "constant", None
    if n < _MIN_MODEL_POINTS:
        # iid-normal prediction interval: mean +- t * sd * sqrt(1 + 1/n)
        mean = np.full(horizon, float(y.mean()))
        var = np.full(horizon, y.var(ddof=1) * (1 + 1 / n)) if n > 1 else np.zeros(horizon)
        return mean, _bounds(mean, var, levels, df=max(n - 1, 1)), "mean", None
    # detection sees up to 12 weeks: over fewer than ~4 cycles a random walk passes for
    # a season in ~10% of cases (1% at 5 cycles), and the cost is O(n)
    period = _resolve_season(y[-max(max_points, 12 * (_WEEK // step)):], step, season)
    # without a detected season (or with a weekly one too long for the history) the
    # naive candidates use the daily cycle: the forecast must not lose to "same time
    # yesterday" whatever the detector said
    day = _DAY / step
    daily = int(round(day)) if day >= 2 and abs(day - round(day)) < 1e-9 else None
    # >= ~150 validation errors, and at least _MIN_FOLDS windows
    folds = min(max(6, _MIN_FOLDS), max(_MIN_FOLDS, -(-150 // horizon)))
    for cycle in dict.fromkeys([period, daily if season == "auto" else None]):
        if not (select and cycle):
            continue
        week = _WEEK / step
        week = int(round(week)) if abs(week - round(week)) < 1e-9 and week > cycle else None
        recent = y[-max(max_points, 3 * (week or 0) + _INTERVAL_FOLDS * horizon,
                        (_MAX_SMEAN + 1) * cycle + _INTERVAL_FOLDS * horizon):]
        if len(recent) >= folds * horizon + max(2 * cycle, 10 + 2 * (cycle // 2)):
            from warehouse.analytics import forecast_select as fs

            cands = fs.candidates(len(recent) - folds * horizon, horizon, cycle, week,
                                  lambda t, h: _fit(t, h, period, max_points))
            seen = None if observed is None else observed[len(y) - len(recent):]
            with _one_blas_thread():
                mean, bounds, name = fs.choose(recent, horizon, cands, folds, levels,
                                               interval_folds=_INTERVAL_FOLDS,
                                               observed=seen)
            return mean, bounds, name, period
    mean, var, name = _fit(y, horizon, period, max_points)
    return mean, _bounds(mean, var, levels), name, period


def _fit(y: np.ndarray, horizon: int, period: int | None, max_points: int
         ) -> tuple[np.ndarray, np.ndarray, str]:
    """ETS (season as state) or STL+ETS on a recent window: (mean, variance, name)."""
    # an ETS season state is updated once a cycle, so it needs many cycles to settle
    # (period 168: 12 -> 24 weeks cut the MAE by 4% and lifted 95% coverage .92 -> .94);
    # STL smooths over 7 cycles, so 3 are enough there
    cycles = _ETS_FIT_CYCLES if period and period <= _ETS_MAX_PERIOD else 3
    window = y[-max(max_points, cycles * (period or 0)):]
    with _one_blas_thread():
        # heuristic seasonal initialisation needs two cycles and 10 adjusted points
        if period and len(window) >= max(2 * period, 10 + 2 * (period // 2)):
            if period <= _ETS_MAX_PERIOD:
                mean, var, name = _ets(window, horizon, period)
            else:
                mean, var, name = _stl_ets(window, horizon, period)
        else:
            mean, var, name = _ets(window, horizon, None)
    return mean, var, name


@functools.cache
def _blas_controller() -> Any:
    # built once: scanning the loaded libraries costs ~6 ms, limiting then ~20 us
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    # L-BFGS-B in the ETS fit makes many tiny BLAS calls: with OpenBLAS on 2 threads
    # each took ~7 ms instead of ~0.3 ms here, a 15x slower fit
    try:
        return _blas_controller().limit(limits=1, user_api="blas")
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, just slower
        return contextlib.nullcontext()


def _resolve_season(y: np.ndarray, step: pd.Timedelta, season: str | int) -> int | None:
    if isinstance(season, (int, np.integer)) and not isinstance(season, bool):
        return int(season) if season >= 2 else None
    if season in _SEASONS:
        p = (_DAY if season == "daily" else _WEEK) / step
        return int(round(p)) if p >= 2 else None
    if season == "none":
        return None
    if season != "auto":
        raise ValueError(f"season must be 'auto', 'daily', 'weekly', 'none' or int: {season!r}")
    return _detect(y, step, _SEASON_THRESHOLD)[1]


def _ets(y: np.ndarray, horizon: int, period: int | None
         ) -> tuple[np.ndarray, np.ndarray, str]:
    """Additive ETS, no trend vs damped trend by AICc; exact (analytic) forecast variance."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    endog = pd.Series(y)  # statsmodels' prediction code needs an index
    init = "heuristic" if period or len(y) >= _HEURISTIC_MIN_POINTS else "estimated"
    best: tuple[float, Any, Any, str] | None = None
    for damped in (False, True):
        kw = {"error": "add", "trend": "add" if damped else None, "damped_trend": damped,
              "seasonal": "add" if period else None, "seasonal_periods": period,
              "initialization_method": init}
        try:
            with warnings.catch_warnings():
                # convergence chatter on short or flat series; the AICc decides
                warnings.simplefilter("ignore")
                model = ETSModel(endog, **kw)
                # parameters only: a full results object costs a Hessian (~10 ms),
                # built below for the chosen model alone
                params = model.fit(disp=False, return_params=True)
                k = len(params) + 1  # + the error variance
                aicc = (-2 * model.loglike(params) + 2 * k
                        + 2 * k * (k + 1) / max(len(y) - k - 1, 1e-9))
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(aicc) and (best is None or aicc < best[0]):
            name = f"ETS(A,{'Ad' if damped else 'N'},{'A' if period else 'N'})"
            best = (aicc, model, params, name + (f"[{period}]" if period else ""))
    if best is None:
        # random walk with the empirical one-step sd: the last-resort fallback
        sd = float(np.std(np.diff(y), ddof=1))
        return np.full(horizon, y[-1]), sd**2 * np.arange(1, horizon + 1), "naive"
    _, model, params, best_name = best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.smooth(params)
    pred = res.get_prediction(start=len(y), end=len(y) + horizon - 1)
    return (np.asarray(pred.predicted_mean, dtype=float),
            np.asarray(pred.forecast_variance, dtype=float), best_name)


def _stl_ets(y: np.ndarray, horizon: int, period: int) -> tuple[np.ndarray, np.ndarray, str]:
    """STL season (repeated from its last cycle) + non-seasonal ETS on the rest."""
    from statsmodels.tsa.seasonal import STL

    # loess evaluated every ~period/10 samples and interpolated: ~15x faster at
    # period 1440 and indistinguishable for a smooth season (statsmodels STL docs)
    jump = max(1, period // 10)
    stl = STL(y, period=period, seasonal_jump=jump, trend_jump=jump,
              low_pass_jump=jump).fit()
    seasonal = np.asarray(stl.seasonal)
    mean, var, name = _ets(y - seasonal, horizon, None)
    last_cycle = seasonal[-period:]
    return mean + last_cycle[np.arange(horizon) % period], var, f"STL[{period}]+{name}"


def _detect(y: np.ndarray, step: pd.Timedelta, threshold: float
            ) -> tuple[str, int | None, float]:
    """(season, period, strength) of a regular array; see detect_seasonality."""
    cands = []
    for name in _SEASONS:
        p = (_DAY if name == "daily" else _WEEK) / step
        if p >= 2 and abs(p - round(p)) < 1e-9 and len(y) >= 2 * round(p):
            cands.append((name, int(round(p))))
    if not cands:
        return "none", None, 0.0
    strengths = _strengths(y, [p for _, p in cands])
    best: tuple[str, int | None, float] = ("none", None, max(strengths))
    for (name, p), s in zip(cands, strengths, strict=True):
        # periods ascend and nest (24 | 168): the longer one must add real variance
        if (s >= threshold and (best[1] is None or s >= best[2] + _NESTED_GAIN)
                and _repeats(y, p)):
            best = (name, p, s)
    return best


def _repeats(y: np.ndarray, p: int) -> bool:
    """Is a cycle ago a better guess than half a cycle ago (MAD of differences)?"""
    # Guards the strength against persistent noise: a random walk's detrended wander
    # can mimic a profile over few cycles (5-min, 10k points: "weekly"), but its lag-p
    # differences are wider than its lag-p/2 ones. Median-centred: a trend is ignored.
    def spread(lag: int) -> float:
        d = y[lag:] - y[:-lag]
        return float(np.median(np.abs(d - np.median(d))))

    return spread(p) <= 0.9 * spread(max(p // 2, 1))


def _strengths(y: np.ndarray, periods: list[int]) -> list[float]:
    """Adjusted R^2 of per-phase means of the detrended series, for each period."""
    lag = max(periods)
    if len(y) >= 3 * lag:
        # centred moving average over one (longest) cycle: removes level and trend
        # but no seasonal shape of that period or of its divisors
        w = np.ones(lag + 1 - lag % 2)
        if lag % 2 == 0:
            w[0] = w[-1] = 0.5
        off = (len(w) - 1) // 2
        r = y[off:len(y) - off] - np.convolve(y, w / lag, mode="valid")
    else:
        # too few cycles to spare one at each end: a straight-line detrend instead
        off = 0
        t = np.arange(len(y))
        r = y - np.polyval(np.polyfit(t, y, 1), t)
    m, ss_tot, out = len(r), float(np.sum((r - r.mean()) ** 2)), []
    for p in periods:
        phase = (np.arange(m) + off) % p
        means = np.bincount(phase, r, p) / np.maximum(np.bincount(phase, minlength=p), 1)
        ss_res = float(np.sum((r - means[phase]) ** 2))
        # adjusted so that white noise scores ~0 however few cycles there are
        ok = ss_tot > 0 and m > p
        out.append(max(0.0, 1 - (ss_res / (m - p)) / (ss_tot / (m - 1))) if ok else 0.0)
    return out


def _bounds(mean: np.ndarray, var: np.ndarray, levels: Sequence[float],
            df: int | None = None) -> dict[str, np.ndarray]:
    sd = np.sqrt(np.maximum(np.asarray(var, dtype=float), 0.0))
    out = {}
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"interval levels must be in (0, 1), got {level}")
        q = stats.t.ppf(0.5 + level / 2, df) if df else stats.norm.ppf(0.5 + level / 2)
        out[f"lo_{_pct(level)}"] = mean - q * sd
        out[f"hi_{_pct(level)}"] = mean + q * sd
    return out


def _pct(level: float) -> str:
    return f"{level * 100:g}"


def _to_series(data: pd.DataFrame | pd.Series) -> pd.Series:
    """A float Series indexed by sorted, unique timestamps, NaNs dropped."""
    if isinstance(data, pd.DataFrame):
        missing = {"ts", "value"} - set(data.columns)
        if missing:
            raise ValueError(f"need columns ts and value; missing {sorted(missing)}")
        s = pd.Series(data["value"].to_numpy(), index=pd.DatetimeIndex(data["ts"]))
    else:
        s = pd.Series(data.to_numpy(), index=pd.DatetimeIndex(data.index))
    s = pd.to_numeric(s, errors="coerce").astype("float64")
    s = s[np.isfinite(s.to_numpy())]
    return s.groupby(level=0).mean().sort_index()


def _regularise(s: pd.Series, step: pd.Timedelta | None
                ) -> tuple[pd.Series, pd.Timedelta]:
    """Average ``s`` onto a regular grid of ``step`` (default: snapped median step).

    Gaps of up to ``_MAX_GAP`` slots are interpolated linearly. Longer ones would
    invent whole cycles: the history is cut after the last one when a quarter of the
    slots (and >= ``_MIN_MODEL_POINTS``) remain, else they are interpolated too.
    """
    grid, step, _ = _regularise_observed(s, step)
    return grid, step


def _regularise_observed(s: pd.Series, step: pd.Timedelta | None
                         ) -> tuple[pd.Series, pd.Timedelta, np.ndarray]:
    """:func:`_regularise`, plus a mask of the grid slots that held a sample."""
    if s.empty:
        raise ValueError("no finite values")
    if step is None:
        if len(s) < 2:
            raise ValueError("cannot infer the step from one point; pass freq=")
        step = pd.Series(s.index).diff().median()
        near = min(_ROUND_STEPS, key=lambda r: abs(r - step))
        step = near if abs(near - step) <= 0.01 * near else step
    return _onto_grid(s, step)


def _onto_grid(s: pd.Series, step: pd.Timedelta
               ) -> tuple[pd.Series, pd.Timedelta, np.ndarray]:
    if step <= pd.Timedelta(0):
        raise ValueError(f"step must be positive, got {step}")
    pos = (s.index - s.index[0]) / step
    # the grid goes through the typical phase of the samples, not the first one's
    # jitter, so that forecasts land on 12:00, not 12:03:17.41
    t0 = s.index[0] + step * float(np.median(pos - np.rint(pos)))
    if step >= pd.Timedelta(minutes=1):
        t0 = t0.round("1s")
    slot = np.rint((s.index - t0) / step).astype(np.int64)
    vals = s.groupby(slot).mean()
    grid = vals.reindex(np.arange(int(slot[-1]) + 1))
    missing = grid.isna().to_numpy()
    if missing.any():
        edges = np.diff(np.r_[0, missing.astype(np.int8), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        long_ends = ends[(ends - starts) > _MAX_GAP]
        if len(long_ends) and len(grid) - long_ends[-1] >= max(
                _MIN_MODEL_POINTS, len(grid) // 4):
            grid = grid.iloc[long_ends[-1]:]
    observed = grid.notna().to_numpy()
    if missing.any():
        grid = grid.interpolate(limit_area="inside")
    # via TimedeltaIndex: Timestamp + ndarray[timedelta64] goes through objects (~30 ms)
    grid.index = t0 + pd.TimedeltaIndex(step * grid.index.to_numpy())
    return grid, step, observed
