"""Model choice by rolling-origin validation on the series itself, and the backtest
errors of the chosen forecaster that calibrate its intervals.

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

After the choice, the chosen candidate and seasonal naive are both backtested on up
to 28 back-to-back windows, the selection windows and older ones (7 when the ETS
model, which must be refitted per window, is chosen); when seasonal naive erred no
more over that longer record, it is the forecast: the choice made on a few recent
windows must not lose to "same time yesterday" over a month. The errors of that
backtest calibrate the intervals (:mod:`warehouse.analytics.forecast_intervals`).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from warehouse.analytics.forecast_intervals import PastWindows, calibrated_bounds

Predictor = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, str]]

_MAX_CYCLES = 7  # seasonal median/mean candidates use at most this many cycles
_COMBO = "combo"
_COMBO_EDGE = 0.05  # relative validation-MAE gain a single candidate needs over combo
_MODEL_INTERVAL_FOLDS = 7  # interval windows when the (slow) ETS model is chosen
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
    best = _select(y, seen, horizon, cands, folds, fc, tests)
    windows = min(interval_folds, _MODEL_INTERVAL_FOLDS) if best == "model" else interval_folds
    past = _past_windows(best, cands, y, seen, horizon, fc[best], tests, windows)
    naive = next((k for k in fc if k.startswith("SNaive[")), None)
    if naive is not None and best != naive:
        # the choice was made on the last few windows; over the longer record of the
        # interval windows it must not lose to "same time yesterday" either
        naive_past = _past_windows(naive, cands, y, seen, horizon, fc[naive], tests,
                                   len(past.errors))
        k = min(len(past.errors), len(naive_past.errors))
        if np.nanmean(np.abs(naive_past.errors[-k:])) <= np.nanmean(np.abs(past.errors[-k:])):
            best, past = naive, naive_past
    mean, var, name = _refit(best, cands, y, horizon)
    bounds = calibrated_bounds(mean, var, past, levels, analytic_ok=best == "model",
                               nonnegative=bool(np.nanmin(y) >= 0))
    return mean, bounds, name


def _past_windows(best: str, cands: dict[str, Predictor], y: np.ndarray, seen: np.ndarray,
                  horizon: int, validated: list[tuple[np.ndarray, np.ndarray]],
                  tests: list[np.ndarray], windows: int) -> PastWindows:
    """The chosen candidate's forecasts and errors on the selection windows and on older
    back-to-back windows, up to ``windows`` in all, while the training part keeps what
    the candidates need (the cheap candidates are vector operations; refitting the ETS
    model is not)."""
    folds = len(tests)
    err = [t - m for t, (m, _) in zip(tests, validated, strict=True)]
    means = [m for m, _ in validated]
    sds = [np.sqrt(np.maximum(v, 0)) for _, v in validated]
    start = len(y) - folds * horizon
    extra = max(0, min(windows - folds, (start - _min_train(cands)) // horizon))
    for f in range(1, extra + 1):
        end = start - f * horizon
        try:
            m, v = _predict_one(best, cands, y[:end], horizon)
        except Exception:
            break
        err.insert(0, np.where(seen[end:end + horizon], y[end:end + horizon] - m, np.nan))
        means.insert(0, m)
        sds.insert(0, np.sqrt(np.maximum(v, 0)))
    return PastWindows(np.stack(err), np.stack(means), np.stack(sds))


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


def _select(y, seen, horizon, cands, folds, fc, tests) -> str:
    """Validation forecasts of every candidate into ``fc``; the name of the best one.

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
    return _prefer_robust(best, {k: w[ok] for k, w in by_window.items()})


def _refit(best: str, cands: dict[str, Predictor], y: np.ndarray, horizon: int
           ) -> tuple[np.ndarray, np.ndarray, str]:
    """The chosen candidate on all of ``y``: (mean, variance, model name)."""
    if best == _COMBO:
        naive = [k for k in cands if k != "model"]
        period = naive[0].split("[")[1].split("]")[0]
        mean, var = _predict_one(best, cands, y, horizon)
        return mean, var, f"Combo[{period}]({len(naive)} seasonal naive/median/mean)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cands[best](y, horizon)


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
        shift = float(np.median(cycles[-1]) - np.median(cycles))  # the level moved since
        cycles = cycles[:, :min(horizon, p)]  # only the phases forecast
        profile = cycles.mean(axis=0)
        sd2 = float(np.var(cycles - profile)) * (1 + 1 / k)
        mean = profile[np.arange(horizon) % p] + shift
        return mean, np.full(horizon, sd2), f"SMean[{p}]x{k}"
    fit.min_train = k * p
    return fit


def _smedian(p: int, k: int, shift: bool) -> Predictor:
    def fit(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, str]:
        kk = min(k, len(y) // p)
        cycles = y[len(y) - kk * p:].reshape(kk, p)
        level = float(np.median(cycles[-1]) - np.median(cycles)) if shift else 0.0
        # only the phases forecast: a weekly cycle of 1-minute data has 10 080
        cycles = cycles[:, :min(horizon, p)]
        profile = np.median(cycles, axis=0)  # the MAE-optimal point forecast per phase
        sd2 = float(np.mean((cycles - profile) ** 2)) * (1 + 1 / kk)
        return profile[np.arange(horizon) % p] + level, np.full(horizon, sd2), \
            f"SMedian[{p}]x{kk}" + ("" if shift else "/flat")
    fit.min_train = k * p
    return fit
