"""Model choice by rolling-origin validation on the series itself, and intervals
calibrated from the validation errors (split-conformal style).

:func:`warehouse.analytics.forecast.forecast` fits one model family (ETS, or STL+ETS
for long seasons). On real series — spiky counts, several seasons (daily + weekly at
5-minute sampling), level changes — that model often loses to "same time yesterday"
(measured: docs/analytics.md). So, when the series is long enough, these candidates
are each backtested on the last ``folds`` windows of ``horizon`` samples, and the one
with the lowest mean absolute error is refitted on all the data:

* ``model`` — the ETS / STL+ETS forecast of :mod:`warehouse.analytics.forecast`;
* ``SNaive[p]`` — the value one daily cycle ago: the benchmark a forecast must beat;
* ``SMedian[p]xK`` — per phase, the median of the last K <= 7 cycles (the MAE-optimal
  point forecast; a spike in one day moves it little), shifted by how far the last
  cycle's median moved from the K cycles' median; ``/flat`` without that shift;
* ``SMean[p]xK`` — the same with means;
* ``SMedian[w]x3`` — the weekly profile (carries the daily shape of each weekday)
  when three weeks are observed: the second seasonality;
* ``combo`` — the per-step median of the candidates above except ``model`` (forecast
  combination; robust when any one candidate fails on a window).

Intervals: the chosen model's analytic intervals are kept only when they covered the
validation points at about their nominal rate; otherwise (always for the naive,
median and combined candidates, whose analytic variance ignores level wander and
spikes) they are the empirical quantiles of the validation absolute errors, per
third of the horizon, at the split-conformal rank level * (k + 1) / k.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

Predictor = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, str]]

_MAX_CYCLES = 7  # seasonal median/mean candidates use at most this many cycles
_COMBO = "combo"
_COMBO_EDGE = 0.05  # relative validation-MAE gain a single candidate needs over combo
_COVERAGE_SLACK = 0.02  # analytic intervals kept when within this of nominal coverage


def candidates(n: int, horizon: int, period: int, week: int | None,
               model: Predictor) -> dict[str, Predictor]:
    """Candidate forecasters for a series of ``n`` samples with season ``period``
    (``week``: the weekly period when it differs); ``model`` is the model of the
    forecast module (ETS or STL+ETS)."""
    out: dict[str, Predictor] = {"model": model, f"SNaive[{period}]": _snaive(period)}
    cycles = min(_MAX_CYCLES, n // period)
    if cycles >= 2:
        out[f"SMedian[{period}]x{cycles}"] = _smedian(period, cycles, shift=True)
        out[f"SMedian[{period}]x{cycles}/flat"] = _smedian(period, cycles, shift=False)
        out[f"SMean[{period}]x{cycles}"] = _smean(period, cycles)
    if week and week != period and n >= 3 * week:
        out[f"SMedian[{week}]x3"] = _smedian(week, 3, shift=True)
    return out


def choose(y: np.ndarray, horizon: int, cands: dict[str, Predictor], folds: int,
           levels: Sequence[float], interval_folds: int = 0
           ) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Backtest every candidate, and their median ("combo"), on ``folds`` windows;
    refit the one with the lowest MAE on all of ``y``. Its intervals come from its
    errors on up to ``interval_folds`` windows (more than ``folds`` when ``y`` holds
    them: the tails of a week of errors are steadier than those of three days)."""
    n = len(y)
    fc: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in cands}
    tests = []
    start = n - folds * horizon
    chosen = _select(y, horizon, cands, folds, fc, tests)
    best, mean, var, name = chosen
    err = [t - m for t, (m, _) in zip(tests, fc[best], strict=True)]
    vms = [m for m, _ in fc[best]]
    sds = [np.sqrt(np.maximum(v, 0)) for _, v in fc[best]]
    # older windows for the intervals, while the training part keeps two cycles
    extra = max(0, min(interval_folds - folds, (start - _min_train(cands)) // horizon))
    for f in range(1, extra + 1):
        end = start - f * horizon
        try:
            m, v = _predict_one(best, cands, y[:end], horizon)
        except Exception:
            break
        err.insert(0, y[end:end + horizon] - m)
        vms.insert(0, m)
        sds.insert(0, np.sqrt(np.maximum(v, 0)))
    if extra >= folds:
        # the selection windows flatter the winner (it won on them): take the interval
        # quantiles from the older windows only when there are as many of those
        err, sds, vms = err[:extra], sds[:extra], vms[:extra]
    e, sd = np.stack(err), np.stack(sds)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.abs(e) / np.where(sd > 0, sd, np.nan)).ravel()
    # counts, durations, bytes: errors grow with the level (a quiet night errs less than
    # a busy afternoon), so their quantiles are taken relative to sqrt(forecast level)
    scale = None
    if np.nanmin(y) >= 0:
        vm = np.abs(np.stack(vms))
        floor = 0.1 * float(np.median(vm)) + 1e-12
        # sd proportional to the square root of the level, as for counts (Poisson)
        scale = (np.sqrt(vm + floor), np.sqrt(np.abs(mean) + floor))
    bounds = _intervals(mean, var, e, z, levels, analytic_ok=best == "model", scale=scale)
    return mean, bounds, name


def _min_train(cands: dict[str, Predictor]) -> int:
    return max(getattr(fn, "min_train", 0) for fn in cands.values())


def _predict_one(best: str, cands: dict[str, Predictor], train: np.ndarray, horizon: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if best == _COMBO:
            parts = [fn(train, horizon)[0] for k, fn in cands.items() if k != "model"]
            return np.median(parts, axis=0), np.zeros(horizon)
        mean, var, _ = cands[best](train, horizon)
        return mean, var


def _select(y, horizon, cands, folds, fc, tests):
    """Validation forecasts of every candidate into ``fc``; the best one refitted."""
    n = len(y)
    for f in range(folds, 0, -1):
        end = n - f * horizon
        train = y[:end]
        tests.append(y[end:end + horizon])
        for name, fn in list(cands.items()):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mean, var, _ = fn(train, horizon)
            except Exception:  # a candidate that cannot fit this fold is out
                cands.pop(name)
                fc.pop(name)
                continue
            fc[name].append((mean, var))
    test = np.stack(tests)
    naive = [k for k in cands if k != "model"]
    if len(naive) >= 3:  # forecast combination: robust to any one candidate's failure
        fc[_COMBO] = [(np.median([fc[k][i][0] for k in naive], axis=0), np.zeros(horizon))
                      for i in range(folds)]
    mae = {k: float(np.mean(np.abs(test - np.stack([m for m, _ in v])))) for k, v in fc.items()}
    best = min(mae, key=lambda k: (mae[k], k != _COMBO))
    # a single candidate must beat the combination clearly: with a few validation
    # windows the winner is partly luck, and the combination rarely loses badly
    if _COMBO in mae and mae[best] > (1 - _COMBO_EDGE) * mae[_COMBO]:
        best = _COMBO
    mean, var = _predict_one(best, cands, y, horizon)
    if best == _COMBO:
        period = naive[0].split("[")[1].split("]")[0]
        name = f"Combo[{period}]({len(naive)} seasonal naive/median/mean)"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean, var, name = cands[best](y, horizon)
    return best, mean, var, name


def _intervals(mean: np.ndarray, var: np.ndarray, e: np.ndarray, z: np.ndarray,
               levels: Sequence[float], analytic_ok: bool,
               scale: tuple[np.ndarray, np.ndarray] | None = None
               ) -> dict[str, np.ndarray]:
    """Analytic intervals if they validated, else conformal quantiles of the
    validation errors (relative to ``scale`` = (validation level, future level), the
    locally weighted variant of Lei et al. 2018, when given)."""
    from scipy import stats

    h = len(mean)
    sd = np.sqrt(np.maximum(var, 0))
    out = {}
    # split the horizon in thirds: errors grow with the lead time
    thirds = np.array_split(np.arange(h), min(3, h)) if e.size >= 300 else [np.arange(h)]
    for level in levels:
        tag = f"{level * 100:g}"
        q = stats.norm.ppf(0.5 + level / 2)
        covered = float(np.mean(z[np.isfinite(z)] <= q)) if np.isfinite(z).any() else 0.0
        if analytic_ok and abs(covered - level) <= _COVERAGE_SLACK:
            width = q * sd
        else:
            width = np.empty(h)
            for part in thirds:
                a = np.abs(e[:, part])
                if scale is not None:
                    a = a / scale[0][:, part]
                a = a.ravel()
                k = len(a)
                rank = min(1.0, level * (k + 1) / k)  # split-conformal finite-sample rank
                width[part] = np.quantile(a, rank)
                if scale is not None:
                    width[part] = width[part] * scale[1][part]
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
    fit.min_train = 2 * p
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
    fit.min_train = k * p
    return fit


def _smedian(p: int, k: int, shift: bool) -> Predictor:
    def fit(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, str]:
        kk = min(k, len(y) // p)
        cycles = y[len(y) - kk * p:].reshape(kk, p)
        profile = np.median(cycles, axis=0)  # the MAE-optimal point forecast per phase
        level = float(np.median(cycles[-1]) - np.median(cycles)) if shift else 0.0
        j = np.arange(horizon)
        resid = cycles - profile
        sd2 = float(np.mean(resid**2)) * (1 + 1 / kk)
        return profile[j % p] + level, np.full(horizon, sd2), \
            f"SMedian[{p}]x{kk}" + ("" if shift else "/flat")
    fit.min_train = k * p
    return fit
