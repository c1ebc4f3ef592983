"""Anomaly detection for metric series: a robust seasonal detector plus an IsolationForest.

Pure functions over DataFrames (no database). The query layer fetches points and
calls :func:`anomalies`; every series (``key``) is handled on its own.

Pipeline per series (details and measured accuracy in ``docs/analytics.md``):

1. regularise onto the median sampling step (missing samples become gaps);
2. detect the season (daily / weekly / other ACF peak / none) from the ACF;
3. seasonal component: STL (statsmodels) for series up to ``_STL_MAX_POINTS``,
   otherwise a per-phase median profile (much faster, same robustness);
4. level: centred rolling median of the deseasonalised series (edge preserving, so a
   level shift does not smear into residuals);
5. robust detector: residual / robust scale (1.4826 * MAD, "MADs"), threshold
   raised automatically on heavy-tailed series; level shifts from medians of the
   windows before/after each point;
6. IsolationForest over engineered features, its score damped by robust evidence
   so it cannot flag clean points on its own.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

_DAY_NS = 86_400 * 10**9
_WEEK_NS = 7 * _DAY_NS
_MIN_POINTS = 12
_STL_MAX_POINTS = 50_000  # beyond this STL costs seconds: use the median profile
_STL_SEASONAL = 15  # STL seasonal smoother (cycles), odd
_NOSEASON_WINDOW = 49  # rolling-median level window (samples) when there is no season
_ACF_MIN = 0.3  # autocorrelation at the seasonal lag needed to call a season
_TAIL_MULT = 2.55  # times the 95th percentile of one side's residuals (Gaussian: 5.0)
_TAIL_CAP = 3.0  # ... but the threshold is never raised above this * threshold
_LEVEL_SHIFT_FRACTION = 0.6  # level-shift threshold = this * threshold (in MADs)
_IF_CORROBORATION = 0.6  # IsolationForest needs |z| >= this * threshold to flag alone
_IF_TREES = 50
_IF_AUTO_THRESHOLD = 0.62
_MAD_TO_SD = 1.4826
_STL_CLIP = 1.0  # Huber-like clipping (MADs) of residuals before the (non-robust) STL

__all__ = ["anomalies", "detect_period"]

_OUT_COLUMNS = ["ts", "value", "expected", "score", "is_anomaly", "method", "kind", "reason"]


def anomalies(
    df: pd.DataFrame,
    *,
    contamination: float | str = "auto",
    methods: Sequence[str] = ("isolation_forest", "robust"),
    threshold: float = 5.0,
    only_anomalies: bool = True,
    period: int | str | None = "auto",
    random_state: int = 0,
) -> pd.DataFrame:
    """Flag anomalous points in one or several metric series.

    Parameters
    ----------
    df : DataFrame
        Columns ``ts`` (timestamps, tz-aware), ``value`` (numeric, NaN allowed) and
        optionally ``key``: each distinct key is an independent series.
    contamination : float or "auto"
        IsolationForest cut-off: a float is the expected fraction of anomalies per
        series; "auto" uses a fixed isolation-score cut-off tuned on a varied suite.
    methods : sequence of {"robust", "isolation_forest"}
        Detectors to combine. With both, the IsolationForest can flag a point only
        when the robust residual is at least ``0.6 * threshold`` MADs.
    threshold : float
        Robust z threshold in MADs (1.4826 * median absolute deviation). It is
        raised automatically on heavy-tailed series (see docs/analytics.md).
    only_anomalies : bool
        Return only flagged points (default) or every input row.
    period : "auto", None, "daily", "weekly" or int
        Season length; "auto" detects it from the autocorrelation, None disables it,
        an int is a period in samples.
    random_state : int
        Seed of the IsolationForest, so results are reproducible.

    Returns
    -------
    DataFrame
        Columns ``ts``, ``key`` (if given), ``value``, ``expected`` (baseline level
        + season), ``score`` (0..1, >= 0.5 means anomalous), ``is_anomaly``,
        ``method`` ("robust", "isolation_forest" or "robust+isolation_forest"),
        ``kind`` ("spike", "dip", "level_shift" or "pattern") and ``reason``.
        Sorted by key and ts.
    """
    unknown = set(methods) - {"robust", "isolation_forest"}
    if unknown or not methods:
        raise ValueError(f"unknown or empty methods: {sorted(unknown) or methods!r}")
    missing = {"ts", "value"} - set(df.columns)
    if missing:
        raise ValueError(f"anomalies() needs columns ts and value; missing {sorted(missing)}")
    has_key = "key" in df.columns
    cols = ["key", *_OUT_COLUMNS] if has_key else list(_OUT_COLUMNS)
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=df[c].dtype if c in df else object)
                             for c in cols})
    opts = {"contamination": contamination, "methods": tuple(methods),
            "threshold": float(threshold), "period": period, "random_state": random_state}
    data = df[["key", "ts", "value"] if has_key else ["ts", "value"]].copy()
    data["value"] = pd.to_numeric(data["value"], errors="coerce").astype("float64")
    data = data.sort_values(["key", "ts"] if has_key else ["ts"], kind="stable")
    groups = data.groupby("key", sort=False, dropna=False) if has_key else [(None, data)]
    parts = []
    for _, part in groups:
        t_ns = _to_ns(part["ts"])
        res = _detect_series(t_ns, part["value"].to_numpy(), opts)
        out = part.copy()
        for c in ("expected", "score", "is_anomaly", "method", "kind", "reason"):
            out[c] = res[c]
        parts.append(out[out["is_anomaly"]] if only_anomalies else out)
    result = pd.concat(parts, ignore_index=True)
    return result[cols].reset_index(drop=True)


def detect_period(values: np.ndarray, step_ns: int | None = None) -> tuple[int, str]:
    """Detect the season of a regularly sampled series from its autocorrelation.

    Parameters
    ----------
    values : ndarray
        Regularly sampled values without gaps (interpolate first).
    step_ns : int or None
        Sampling step in nanoseconds; None when timestamps carry no meaning, in
        which case only the generic ACF-peak search runs.

    Returns
    -------
    (period, name)
        Period in samples (0 = no season) and "daily", "weekly", "N-sample" or "none".
    """
    x = np.asarray(values, dtype="float64")
    n = len(x)
    found = {}
    if step_ns:
        for name, span in (("daily", _DAY_NS), ("weekly", _WEEK_NS)):
            p = int(round(span / step_ns))
            # a period that is not (close to) a whole number of samples drifts in phase
            if p >= 4 and n >= 3 * p and abs(p * step_ns - span) <= 0.02 * span:
                found[name] = p
    if "weekly" in found:
        pw, pd_ = found["weekly"], found["daily"]
        # a daily season repeats weekly too: call it weekly only when, after removing
        # the weekly mean, a week ago predicts clearly better than a day ago
        acf_w, acf_d = _acf_at(x, pw), _acf_at(x, pd_, window=pw)
        if acf_w >= _ACF_MIN and acf_w >= acf_d + 0.1:
            return pw, "weekly"
    if "daily" in found and _acf_at(x, found["daily"]) >= _ACF_MIN:
        return found["daily"], "daily"
    p = _acf_peak(x)
    return (p, f"{p}-sample") if p else (0, "none")


def _to_ns(ts: pd.Series) -> np.ndarray:
    """Timestamps as int64 ns since the epoch (tz-aware or naive alike)."""
    s = pd.to_datetime(ts)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[ns]").astype("int64")


def _rolling_median(x: np.ndarray, window: int, center: bool = True) -> np.ndarray:
    s = pd.Series(x).rolling(max(int(window), 1), center=center, min_periods=1).median()
    return s.to_numpy()


def _winsorise(x: np.ndarray, k: float = 5.0) -> np.ndarray:
    """Clip to median +- k robust SDs so a few spikes cannot dominate a correlation."""
    med = np.nanmedian(x)
    scale = _MAD_TO_SD * np.nanmedian(np.abs(x - med))
    if not np.isfinite(scale) or scale <= 0:
        return x
    return np.clip(x, med - k * scale, med + k * scale)


def _acf_at(x: np.ndarray, lag: int, window: int | None = None) -> float:
    """Autocorrelation at ``lag`` after removing a centred moving average (default: lag)."""
    trend = pd.Series(x).rolling(window or lag, center=True, min_periods=1).mean().to_numpy()
    d = _winsorise(x - trend)
    a, b = d[:-lag], d[lag:]
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _acf_peak(x: np.ndarray) -> int:
    """Generic season: first strong ACF peak (FFT), confirmed at its own lag."""
    n = len(x)
    if n < 48 or n > 200_000:
        return 0
    win = max(n // 10, 25)
    d = _winsorise(x - pd.Series(x).rolling(win, center=True, min_periods=1).mean().to_numpy())
    d = d - d.mean()
    if not np.any(d):
        return 0
    f = np.fft.rfft(d, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[: n // 3]
    acf = acf / acf[0]
    lags = np.arange(2, len(acf) - 1)
    peaks = lags[(acf[lags] > acf[lags - 1]) & (acf[lags] >= acf[lags + 1]) & (acf[lags] >= 0.5)]
    peaks = peaks[peaks >= 4]
    if len(peaks) == 0:
        return 0
    p = int(peaks[0])
    return p if n >= 3 * p and _acf_at(x, p) >= 0.4 else 0


def _robust_scale(r: np.ndarray) -> float:
    """1.4826 * MAD, falling back to the mean absolute deviation when MAD is 0 (counts)."""
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return 1.0
    med = np.median(r)
    scale = _MAD_TO_SD * np.median(np.abs(r - med))
    if scale <= 0:
        scale = 1.2533 * np.mean(np.abs(r - med))
    return float(scale) if scale > 0 else 1e-9


def _tail_threshold(z: np.ndarray, thr: float) -> float:
    """Threshold for the positive side of the residuals, raised on heavy-tailed noise.

    A point must also lie ``_TAIL_MULT`` times beyond the side's 95th percentile
    (for Gaussian noise that is ``thr`` itself, so only heavier tails raise it); the
    percentile moves only if more than ~5% of the points are anomalous.
    """
    side = z[z > 0]
    if len(side) < 20:
        return thr
    limit = _TAIL_MULT * np.quantile(side, 0.95)
    return float(min(max(thr, limit), _TAIL_CAP * thr))


def _regularise(t_ns: np.ndarray) -> tuple[np.ndarray, int, int | None]:
    """Grid position of each (sorted) timestamp, grid length, and the step in ns."""
    n = len(t_ns)
    diffs = np.diff(t_ns)
    diffs = diffs[diffs > 0]
    if len(diffs) == 0:
        return np.arange(n), n, None
    step = int(np.median(diffs))
    pos = np.rint((t_ns - t_ns[0]) / step).astype("int64")
    m = int(pos[-1]) + 1
    # very irregular sampling: a grid would be mostly holes, use the sample order
    if m > 3 * n + 100:
        return np.arange(n), n, None
    return pos, m, step


def _seasonal(gi: np.ndarray, p: int, window: int) -> np.ndarray:
    """Seasonal component of the gap-free grid series ``gi`` (zeros when p == 0)."""
    m = len(gi)
    if p < 2:
        return np.zeros(m)
    phase = np.arange(m) % p
    detrended = gi - _rolling_median(gi, window)
    profile = pd.Series(detrended).groupby(phase).median().to_numpy()
    rough = profile[phase]
    if m > _STL_MAX_POINTS:
        return rough - np.median(profile)
    from statsmodels.tsa.seasonal import STL

    # STL is not robust here (robust=True is ~7x slower): winsorise gross outliers
    # against the robust rough decomposition first so they cannot leak into the season.
    resid = detrended - rough
    scale = _robust_scale(resid)
    clean = rough + np.clip(resid, -_STL_CLIP * scale, _STL_CLIP * scale)
    trend_len = int(np.ceil(1.5 * p / (1 - 1.5 / 7)))
    trend_len += trend_len % 2 == 0
    low_pass = p + 1 + (p % 2)  # odd and > period, as STL requires
    fit = STL(clean, period=p, seasonal=_STL_SEASONAL, robust=False, seasonal_jump=1,
              trend=trend_len, trend_jump=max(1, trend_len // 10),
              low_pass=low_pass, low_pass_jump=max(1, low_pass // 10)).fit()
    return np.asarray(fit.seasonal)


def _level_shifts(s: np.ndarray, w: int, scale: float, k: float) -> tuple[np.ndarray, ...]:
    """Indices where the median of the next ``w`` samples differs from the previous ``w``.

    Returns (index, level_before, level_after, statistic in MADs) of local maxima whose
    jump exceeds ``k`` MADs and six standard errors of a difference of medians.
    """
    ser = pd.Series(s)
    mp = max(w // 2, 3)
    left = ser.rolling(w, min_periods=mp).median().shift(1).to_numpy()
    right = ser[::-1].rolling(w, min_periods=mp).median()[::-1].to_numpy()
    jump = np.abs(right - left)
    jump = np.where(np.isfinite(jump), jump, 0.0)
    need = max(k * scale, 6 * 1.2533 * scale * np.sqrt(2.0 / w))
    local_max = jump == pd.Series(jump).rolling(2 * w + 1, center=True, min_periods=1).max()
    idx = np.flatnonzero((jump > need) & local_max)
    if len(idx) > 1:  # a plateau of equal maxima: keep its first index
        idx = idx[np.r_[True, np.diff(idx) > w]]
    return idx, left[idx], right[idx], jump[idx] / scale


def _if_scores(feats: np.ndarray, contamination: float | str, seed: int) -> tuple:
    """IsolationForest anomaly scores in (0, 1) and the cut-off that means "flag"."""
    from sklearn.ensemble import IsolationForest

    n = len(feats)
    forest = IsolationForest(n_estimators=_IF_TREES, max_samples=min(256, n),
                             random_state=seed).fit(feats)
    raw = -forest.score_samples(feats)  # paper's s(x, n): ~0.5 normal, -> 1 isolated
    if contamination == "auto":
        cut = _IF_AUTO_THRESHOLD
    else:
        cut = float(np.quantile(raw, 1.0 - float(contamination)))
    return raw, cut


def _calibrate(stat: np.ndarray, cut: float) -> np.ndarray:
    """Map a non-negative statistic to 0..1 with ``cut`` -> 0.5."""
    stat = np.maximum(stat, 0.0)
    return stat / (stat + cut) if cut > 0 else np.ones_like(stat)


_FEATURES = ("value", "level", "spread", "deviation", "seasonal residual", "first difference")


def _detect_series(t_ns: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> dict[str, Any]:
    """Detect anomalies in one sorted series; arrays aligned with the input rows."""
    n_all = len(y)
    out: dict[str, Any] = {
        "expected": np.full(n_all, np.nan), "score": np.zeros(n_all),
        "is_anomaly": np.zeros(n_all, bool), "method": np.full(n_all, "", object),
        "kind": np.full(n_all, "", object), "reason": np.full(n_all, "", object),
    }
    ok = np.flatnonzero(np.isfinite(y))
    if len(ok) < _MIN_POINTS:
        out["expected"][ok] = np.median(y[ok]) if len(ok) else np.nan
        return out
    yv = y[ok]
    pos, m, step = _regularise(t_ns[ok])
    counts = np.bincount(pos, minlength=m)
    grid = np.full(m, np.nan)
    filled = counts > 0
    grid[filled] = np.bincount(pos, weights=yv, minlength=m)[filled] / counts[filled]
    gi = np.interp(np.arange(m), np.flatnonzero(filled), grid[filled])

    p, season = _resolve_period(opts["period"], gi, step)
    window = max(p, 9) if p else _NOSEASON_WINDOW
    seasonal = _seasonal(gi, p, window)
    deseason = grid - seasonal
    level = _rolling_median(deseason, window)
    expected = level + seasonal
    resid = yv - expected[pos]
    scale = _robust_scale(resid)
    z = resid / scale
    thr = opts["threshold"]
    thr_up, thr_dn = _tail_threshold(z, thr), _tail_threshold(-z, thr)
    thr_pt = np.where(z >= 0, thr_up, thr_dn)
    score = np.zeros(len(yv))
    methods_of = np.full(len(yv), "", object)
    kind = np.where(z >= 0, "spike", "dip").astype(object)
    reason = np.full(len(yv), "", object)

    if "robust" in opts["methods"]:
        score = np.abs(z) / (np.abs(z) + thr_pt)
        w = max(window // 2, 8)
        idx, before, after, stat = _level_shifts(deseason, w, scale, _LEVEL_SHIFT_FRACTION * thr)
        # map a grid index of a shift to the first observed point at or after it
        pts = np.searchsorted(pos, idx)
        keep = pts < len(pos)
        for i, b, a, st in zip(pts[keep], before[keep], after[keep], stat[keep], strict=True):
            s_ls = st / (st + _LEVEL_SHIFT_FRACTION * thr)
            if s_ls > score[i]:
                score[i], kind[i] = s_ls, "level_shift"
                reason[i] = f"level shift: rolling median moved from {b:.4g} to {a:.4g}"
        methods_of[score >= 0.5] = "robust"

    if "isolation_forest" in opts["methods"] and len(yv) >= 32:
        feats = _features(yv, pos, grid, level, seasonal, resid, scale, window)
        raw, cut = _if_scores(feats, opts["contamination"], opts["random_state"])
        s_if = 0.5 + 0.5 * (raw - cut) / max(1.0 - cut, 1e-9)
        s_if = np.where(raw >= cut, s_if, 0.5 * raw / max(cut, 1e-9))
        if "robust" in opts["methods"]:
            # the forest alone flags many clean extremes: damp it by robust evidence
            s_if = s_if * np.minimum(1.0, np.abs(z) / (_IF_CORROBORATION * thr_pt))
        if_flag = s_if >= 0.5
        both = if_flag & (methods_of == "robust")
        methods_of[both] = "robust+isolation_forest"
        only_if = if_flag & (methods_of == "")
        methods_of[only_if] = "isolation_forest"
        kind[only_if & (np.abs(z) < thr_pt)] = "pattern"
        score = np.maximum(score, s_if)
        for i in np.flatnonzero(only_if):
            top = np.argsort(-np.abs(feats[i, 2:]))[:2] + 2
            detail = ", ".join(f"{_FEATURES[j]} {feats[i, j]:+.1f} MADs" for j in top)
            reason[i] = f"isolation forest: unusual combination (score {raw[i]:.2f}): {detail}"

    flagged = score >= 0.5
    season_txt = f"{season} season" if p else "no season"
    base = "seasonal baseline" if p else "rolling baseline"
    for i in np.flatnonzero(flagged & (reason == "")):
        side = "above" if z[i] >= 0 else "below"
        reason[i] = (f"value {yv[i]:.4g} is {abs(z[i]):.1f} MADs {side} the {base} "
                     f"{expected[pos[i]]:.4g} ({season_txt})")
    out["expected"][ok] = expected[pos]
    out["score"][ok] = np.round(score, 4)
    out["is_anomaly"][ok] = flagged
    out["method"][ok] = np.where(flagged, methods_of, "")
    out["kind"][ok] = np.where(flagged, kind, "")
    out["reason"][ok] = np.where(flagged, reason, "")
    return out


def _resolve_period(period: int | str | None, gi: np.ndarray, step: int | None) -> tuple:
    """Period in samples and its name, from the ``period`` option."""
    if period is None:
        return 0, "none"
    if period == "auto":
        return detect_period(gi, step)
    if period in ("daily", "weekly"):
        span = _DAY_NS if period == "daily" else _WEEK_NS
        p = int(round(span / step)) if step else 0
        return (p, str(period)) if 2 <= p <= len(gi) // 2 else (0, "none")
    p = int(period)
    return (p, f"{p}-sample") if 2 <= p <= len(gi) // 2 else (0, "none")


def _features(yv, pos, grid, level, seasonal, resid, scale, window) -> np.ndarray:
    """IsolationForest features, in MADs of the residual so they are scale-free."""
    med = np.median(yv)
    spread = _MAD_TO_SD * _rolling_median(np.abs(grid - level - seasonal), window)
    diff = np.diff(grid, prepend=np.nan)
    cols = [
        (yv - med) / scale,
        (level[pos] - med) / scale,
        spread[pos] / scale,
        (yv - level[pos]) / scale,
        resid / scale,
        np.nan_to_num(diff[pos] / scale),
    ]
    return np.nan_to_num(np.column_stack(cols), posinf=0.0, neginf=0.0)
