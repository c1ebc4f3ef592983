"""Model choice by rolling-origin validation on the series itself, and intervals
calibrated from the validation errors (split-conformal style).

:func:`warehouse.analytics.forecast.forecast` fits one model family (ETS, or STL+ETS
for long seasons). On real series — spiky counts, several seasons (daily + weekly at
5-minute sampling), level changes — that model often loses to "same time yesterday"
(measured: docs/analytics.md). So, when the series is long enough, these candidates
are each backtested on the last ``folds`` windows of ``horizon`` samples, and the one
with the lowest mean absolute error is refitted on all the data — unless it beat the
combination, and then seasonal naive, by less than the noise of the windows (a paired
comparison of per-window MAE: the gain must exceed one standard error), in which case
the more robust forecast is kept. Only slots that held a sample are scored (the
others were interpolated by the regularisation):

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
third of the horizon, at the split-conformal rank level * (k + 1) / k, relative to
the forecast level for nonnegative series, from up to 28 windows (7 when the ETS
model, which must be refitted per window, is chosen).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from warehouse.analytics.forecast_intervals import conformal_bounds

Predictor = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, str]]

_MAX_CYCLES = 7  # seasonal median/mean candidates use at most this many cycles
_COMBO = "combo"
_COMBO_EDGE = 0.05  # relative validation-MAE gain a single candidate needs over combo
_MODEL_INTERVAL_FOLDS = 7  # interval windows when the (slow) ETS model is chosen
_LEVEL_POWER = 1.0  # nonnegative series: errors relative to the level (a log scale)
_COMBO_SE = 1.0  # standard errors a single candidate's gain over combo must exceed
_NOISE_SE = 1.0  # standard errors of the paired window differences a gain must exceed
_MIN_GAIN = 0.02  # ... and this share of seasonal naive's validation MAE


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
           levels: Sequence[float], interval_folds: int = 0,
           observed: np.ndarray | None = None
           ) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Backtest every candidate, and their median ("combo"), on ``folds`` windows;
    refit the one with the lowest MAE on all of ``y`` unless seasonal naive is as good
    within the noise of the windows. Its intervals come from its errors on up to
    ``interval_folds`` windows (more than ``folds`` when ``y`` holds them: the tails
    of a week of errors are steadier than those of three days). ``observed`` marks the
    slots that held a sample: interpolated ones are neither scored nor calibrated on."""
    n = len(y)
    seen = np.ones(n, dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    fc: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in cands}
    tests: list[np.ndarray] = []
    start = n - folds * horizon
    chosen = _select(y, seen, horizon, cands, folds, fc, tests)
    best, mean, var, name = chosen
    err = [t - m for t, (m, _) in zip(tests, fc[best], strict=True)]
    vms = [m for m, _ in fc[best]]
    sds = [np.sqrt(np.maximum(v, 0)) for _, v in fc[best]]
    # older windows for the intervals, while the training part keeps two cycles
    # (the cheap candidates are vector operations; refitting the ETS model is not)
    if best == "model":
        interval_folds = min(interval_folds, _MODEL_INTERVAL_FOLDS)
    extra = max(0, min(interval_folds - folds, (start - _min_train(cands)) // horizon))
    for f in range(1, extra + 1):
        end = start - f * horizon
        try:
            m, v = _predict_one(best, cands, y[:end], horizon)
        except Exception:
            break
        err.insert(0, np.where(seen[end:end + horizon], y[end:end + horizon] - m, np.nan))
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
    # a busy afternoon), so their quantiles are taken relative to the forecast level
    # (level ** _LEVEL_POWER; measured on real series: docs/analytics.md)
    scale = None
    if np.nanmin(y) >= 0:
        vm = np.abs(np.stack(vms))
        floor = 0.1 * float(np.median(vm)) + 1e-12
        scale = ((vm + floor) ** _LEVEL_POWER, (np.abs(mean) + floor) ** _LEVEL_POWER)
    bounds = conformal_bounds(mean, var, e, z, levels, analytic_ok=best == "model", scale=scale)
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


def _select(y, seen, horizon, cands, folds, fc, tests):
    """Validation forecasts of every candidate into ``fc``; the best one refitted.

    ``tests`` receives the validation windows, NaN where a slot was interpolated."""
    n = len(y)
    for f in range(folds, 0, -1):
        end = n - f * horizon
        train = y[:end]
        tests.append(np.where(seen[end:end + horizon], y[end:end + horizon], np.nan))
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
    # per window MAE over the observed slots (NaN for a window without one)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        by_window = {k: np.nanmean(np.abs(test - np.stack([m for m, _ in v])), axis=1)
                     for k, v in fc.items()}
    ok = np.isfinite(np.stack(list(by_window.values()))).all(axis=0)
    if not ok.any():
        raise ValueError("no observed sample in the validation windows")
    mae = {k: float(np.mean(w[ok])) for k, w in by_window.items()}
    best = min(mae, key=lambda k: (mae[k], k != _COMBO))
    # with a few validation windows the winner is partly luck, and the combination
    # rarely loses badly: a single candidate must beat it clearly
    best = _prefer_robust(best, {k: w[ok] for k, w in by_window.items()})
    mean, var = _predict_one(best, cands, y, horizon)
    if best == _COMBO:
        period = naive[0].split("[")[1].split("]")[0]
        name = f"Combo[{period}]({len(naive)} seasonal naive/median/mean)"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean, var, name = cands[best](y, horizon)
    return best, mean, var, name


def _beats(by_window: dict[str, np.ndarray], a: str, b: str, n_se: float,
           min_gain: float) -> bool:
    """Did ``a`` beat ``b`` on the validation windows by more than their noise: a
    mean MAE gain above ``n_se`` standard errors of the paired per-window differences
    and above ``min_gain`` of ``b``'s MAE?

    The winner of a handful of windows, chosen among several candidates, looks better
    than it is (selection bias); a tie goes to the more robust forecast."""
    d = by_window[b] - by_window[a]  # > 0: a erred less on that window
    k = len(d)
    se = float(np.std(d, ddof=1)) / np.sqrt(k) if k > 1 else np.inf
    gain = float(np.mean(d))
    return gain > n_se * se and gain > min_gain * float(np.mean(by_window[b]))


def _prefer_robust(best: str, by_window: dict[str, np.ndarray]) -> str:
    """The validation winner only when it clearly beat the robust choices: a single
    candidate must beat the combination (``_COMBO_SE`` standard errors, ``_COMBO_EDGE``
    of its MAE), and whatever is chosen must beat seasonal naive (``_NOISE_SE``,
    ``_MIN_GAIN``) — the benchmark the forecast must not lose to."""
    if _COMBO in by_window and best != _COMBO and not _beats(
            by_window, best, _COMBO, _COMBO_SE, _COMBO_EDGE):
        best = _COMBO
    naive = next((k for k in by_window if k.startswith("SNaive[")), None)
    if naive is None or best == naive:
        return best
    return best if _beats(by_window, best, naive, _NOISE_SE, _MIN_GAIN) else naive


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
