"""Model choice by rolling-origin validation on the series itself, and intervals
calibrated from the validation errors (split-conformal style).

:func:`warehouse.analytics.forecast.forecast` fits one model family (ETS, or STL+ETS
for long seasons). On real series with several seasons (daily + weekly at 5-minute
sampling) or very noisy ones, that model can lose to the seasonal-naive forecast. So,
when the series is long enough, the candidates below are each backtested on the last
``folds`` windows of ``horizon`` samples before the end, and the one with the lowest
mean absolute error is refitted on all the data:

* ``model`` — the ETS / STL+ETS forecast of :mod:`warehouse.analytics.forecast`;
* ``SNaive[p]`` — the value one season ago (daily period p, and weekly when two weeks
  are observed): the benchmark a forecast must beat;
* ``SMean[p]xK`` — the mean of the same phase over the last K = 2..7 cycles shifted to
  the current level (median of the last cycle minus the median of those K cycles): a
  seasonal naive with K times less noise;
* ``MSTL[p,w]+ETS`` — daily and weekly seasons removed together (statsmodels MSTL),
  non-seasonal ETS on the rest, the seasons' last cycles repeated (Bandara et al. 2021).

Intervals: the chosen model's own analytic intervals are kept only when they covered
the validation points at about their nominal rate; otherwise (and always for the
naive candidates, whose analytic variance ignores the level's wander) they are the
empirical quantiles of the validation absolute errors, per horizon third, widened by
the finite-sample factor (n + 1) / n of split-conformal prediction.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

Predictor = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, str]]

_MAX_SMEAN_CYCLES = 7
_COVERAGE_SLACK = 0.05  # analytic intervals kept when within this of nominal coverage


def candidates(n: int, horizon: int, period: int, week: int | None,
               model: Predictor, plain: Predictor) -> dict[str, Predictor]:
    """Candidate forecasters for a series of ``n`` samples with season ``period``
    (``week``: the weekly period when it differs); ``model`` is the seasonal model of
    the forecast module, ``plain`` its non-seasonal ETS (used after MSTL)."""
    out: dict[str, Predictor] = {"model": model, f"SNaive[{period}]": _snaive(period)}
    for k in (2, 3, _MAX_SMEAN_CYCLES):
        if n >= (k + 1) * period + horizon:
            out[f"SMean[{period}]x{k}"] = _smean(period, k)
    if week and week != period and n >= 2 * week + horizon:
        out[f"SNaive[{week}]"] = _snaive(week)
        if week <= 20_000:
            out[f"MSTL[{period},{week}]+ETS"] = _mstl(period, week, plain)
    return out


def choose(y: np.ndarray, horizon: int, cands: dict[str, Predictor], folds: int,
           levels: Sequence[float]) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Backtest every candidate on ``folds`` windows, refit the best on all of ``y``."""
    n = len(y)
    errs: dict[str, list[np.ndarray]] = {k: [] for k in cands}
    zs: dict[str, list[np.ndarray]] = {k: [] for k in cands}
    for f in range(folds, 0, -1):
        end = n - f * horizon
        train, test = y[:end], y[end:end + horizon]
        for name, fn in list(cands.items()):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mean, var, _ = fn(train, horizon)
            except Exception:  # a candidate that cannot fit this fold is out
                cands.pop(name)
                continue
            errs[name].append(test - mean)
            sd = np.sqrt(np.maximum(var, 0))
            zs[name].append(np.abs(test - mean) / np.where(sd > 0, sd, np.nan))
    mae = {k: float(np.mean(np.abs(np.concatenate(errs[k])))) for k in cands}
    best = min(mae, key=lambda k: (mae[k], k != "model"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, var, name = cands[best](y, horizon)
    e = np.stack(errs[best])  # folds x horizon
    z = np.concatenate(zs[best])
    bounds = _intervals(mean, var, e, z, levels, analytic_ok=best == "model")
    return mean, bounds, name


def _intervals(mean: np.ndarray, var: np.ndarray, e: np.ndarray, z: np.ndarray,
               levels: Sequence[float], analytic_ok: bool) -> dict[str, np.ndarray]:
    from scipy import stats

    h = len(mean)
    sd = np.sqrt(np.maximum(var, 0))
    out = {}
    # split the horizon in thirds: errors grow with the lead time
    thirds = np.array_split(np.arange(h), min(3, h))
    for level in levels:
        tag = f"{level * 100:g}"
        q = stats.norm.ppf(0.5 + level / 2)
        covered = float(np.mean(z[np.isfinite(z)] <= q)) if np.isfinite(z).any() else 0.0
        if analytic_ok and abs(covered - level) <= _COVERAGE_SLACK:
            width = q * sd
        else:
            width = np.empty(h)
            for part in thirds:
                a = np.abs(e[:, part]).ravel()
                k = len(a)
                rank = min(1.0, level * (k + 1) / k)  # split-conformal finite-sample rank
                width[part] = np.quantile(a, rank)
        out[f"lo_{tag}"] = mean - width
        out[f"hi_{tag}"] = mean + width
    return out


def _snaive(p: int) -> Predictor:
    def fit(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, str]:
        j = np.arange(horizon)
        mean = y[len(y) - p + (j % p)]
        d = y[p:] - y[:-p]
        sd2 = float(np.mean(d**2)) if len(d) else 0.0
        return mean, sd2 * (j // p + 1), f"SNaive[{p}]"
    return fit


def _smean(p: int, k: int) -> Predictor:
    def fit(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, str]:
        cycles = y[len(y) - k * p:].reshape(k, p)
        profile = cycles.mean(axis=0)
        shift = float(np.median(cycles[-1]) - np.median(cycles))  # the level moved since
        j = np.arange(horizon)
        mean = profile[j % p] + shift
        resid = y[len(y) - k * p:] - np.tile(profile, k)
        sd2 = float(np.var(resid)) * (1 + 1 / k)
        return mean, np.full(horizon, sd2), f"SMean[{p}]x{k}"
    return fit


def _mstl(p: int, w: int, model: Predictor) -> Predictor:
    def fit(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, str]:
        from statsmodels.tsa.seasonal import MSTL

        y = y[-min(len(y), 4 * w):]  # four weeks: the weekly shape, at bounded cost
        jump = {"seasonal_jump": max(1, p // 10), "trend_jump": max(1, p // 10),
                "low_pass_jump": max(1, p // 10)}
        res = MSTL(y, periods=(p, w), iterate=1, stl_kwargs=jump).fit()
        seas = np.asarray(res.seasonal).reshape(len(y), -1)
        j = np.arange(horizon)
        future = (seas[len(y) - p + (j % p), 0] + seas[len(y) - w + (j % w), 1])
        mean, var, name = model(y - seas.sum(axis=1), horizon)
        return mean + future, var, f"MSTL[{p},{w}]+{name}"
    return fit
