"""Anomaly detection for metric series: a robust seasonal detector plus an IsolationForest.

Pure functions over DataFrames (no database): the query layer fetches points and
calls :func:`anomalies`; each series (``key``) is handled on its own. Per series:

1. regularise onto the median sampling step (missing samples become gaps);
2. detect the season (daily / weekly / other ACF peak / none) from the ACF;
3. seasonal component: STL (statsmodels) when the series and period are short enough,
   else a per-phase median profile (faster and as robust);
4. level: centred rolling median of the deseasonalised series (edge preserving, so
   a level shift does not smear into the residuals);
5. robust detector: residual / (1.4826 * MAD) ("MADs") against a threshold raised on
   heavy-tailed series, plus level shifts from medians before/after each point;
6. IsolationForest over engineered features, damped by the robust evidence.

Method, tuning and measured accuracy/runtime: ``docs/analytics.md`` (Anomalies).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

_DAY_NS = 86_400 * 10**9
_WEEK_NS = 7 * _DAY_NS
_MIN_POINTS = 12
_MAD_TO_SD = 1.4826
_ACF_MIN = 0.3  # autocorrelation at the seasonal lag needed to call a season
# STL costs ~5 us/point with jumps and grows with the period; past these limits the
# per-phase median profile is used (it scored as well on the generated suite)
_STL_MAX_POINTS, _STL_MAX_PERIOD = 50_000, 400
_STL_SEASONAL = 15  # seasonal smoother span in cycles (odd): a stable season
_STL_CLIP = 1.0  # Huber-like clipping (MADs) of the input of the non-robust STL ...
_STL_INNER = 1  # ... which then needs one inner iteration (default 5: 5x the cost)
_NOSEASON_WINDOW = 73  # level window (samples) without a season; else one period
_TAIL_MULT = 2.55  # x 95th percentile of one side of |z| (= 5.0 for Gaussian noise)
_TAIL_CAP = 3.0  # the tail rule never raises the threshold above 3 x threshold
_LEVEL_SHIFT_FRACTION = 0.7  # level shift: jump >= 0.7 x threshold MADs
_IF_CORROBORATION = 0.7  # forest score damped by min(1, |z| / (0.7 x threshold))
_IF_TREES = 25  # sklearn spends ~0.8 ms of Python per tree: the main cost per series
_IF_AUTO_THRESHOLD = 0.77  # isolation score cut-off for contamination="auto"
# a fresh worker spends seconds importing sklearn/statsmodels: below this many points
# one process is faster (measured: 100 x 10k took 6.4 s CPU in one process)
_PARALLEL_MIN_POINTS = 3_000_000

__all__ = ["anomalies", "detect_period"]

_OUT_COLUMNS = ["ts", "value", "expected", "score", "is_anomaly", "method", "kind", "reason"]


def anomalies(
    df: pd.DataFrame,
    *,
    contamination: float | str = "auto",
    methods: Sequence[str] | None = None,
    threshold: float | None = None,
    only_anomalies: bool = True,
    period: int | str | None = "auto",
    random_state: int = 0,
    n_jobs: int | None = None,
    mode: str = "retrospective",
) -> pd.DataFrame:
    """Flag anomalous points in one or several metric series.

    Two modes. ``mode="streaming"`` scores each point from the points before it only
    (the record detector of :mod:`warehouse.analytics.streaming`, what alerts see;
    measured on NAB's real series). ``mode="retrospective"`` (default) analyses
    history and may look both ways: by default the classic batch detector (centred
    windows, STL, robust z, IsolationForest; ``threshold`` in MADs, default 5), or
    with ``methods=("record",)`` the record detector run forwards with the start of
    the series scored backwards. On real labelled series the record detector is far
    better and the classic one scores about 0; on short generated series (under
    ~3 days) the classic one finds more (docs/analytics.md). For the record detector
    ``threshold`` is the score threshold (default 0.5) and ``contamination``,
    ``random_state`` and ``n_jobs`` do not apply.

    Parameters
    ----------
    df : DataFrame
        Columns ``ts`` (timestamps, tz-aware), ``value`` (numeric, NaN allowed) and
        optionally ``key``: each distinct key is an independent series.
    contamination : float or "auto"
        IsolationForest cut-off: a float is the expected fraction of anomalies per
        series; "auto" uses a fixed isolation-score cut-off tuned on a varied suite.
    methods : None, ("record",) or a sequence of {"robust", "isolation_forest"}
        None: classic robust + IsolationForest (retrospective), record (streaming).
        Classic detectors are combined; with both, the IsolationForest score is
        damped by ``min(1, |z| / (0.7 * threshold))``.
    threshold : float, optional
        Record detector: score threshold (default 0.5). Classic: robust z threshold
        in MADs (default 5; raised automatically on heavy-tailed series).
    only_anomalies : bool
        Return only flagged points (default) or every input row.
    period : "auto", None, "daily", "weekly" or int
        Season length; "auto" detects it from the autocorrelation, None disables it,
        an int is a period in samples.
    random_state : int
        Seed of the IsolationForest, so results are reproducible.
    n_jobs : int or None
        Worker processes over series. None: one per CPU (at most 4) when there are
        several series and at least 3M points, else 1. Results do not depend on it.

    Returns
    -------
    DataFrame
        Columns ``ts``, ``key`` (if given), ``value``, ``expected`` (baseline level
        + season), ``score`` (0..1, >= 0.5 means anomalous), ``is_anomaly``,
        ``method`` ("streaming", "retrospective", or for the classic detector
        "robust", "isolation_forest" or "robust+isolation_forest"), ``kind`` ("spike",
        "dip", "level_shift", "seasonal", "variance" or "pattern") and ``reason``.
        Sorted by key and ts.
    """
    if mode not in ("retrospective", "streaming"):
        raise ValueError(f"mode must be 'retrospective' or 'streaming', got {mode!r}")
    if methods is None:
        methods = ("record",) if mode == "streaming" else ("isolation_forest", "robust")
    if tuple(methods) == ("record",):
        from warehouse.analytics.streaming import DEFAULT_THRESHOLD, stream_frame

        return stream_frame(df, threshold=DEFAULT_THRESHOLD if threshold is None
                            else float(threshold), only_anomalies=only_anomalies,
                            period=period, retrospective=mode == "retrospective")
    if mode == "streaming":
        raise ValueError("the classic methods look both ways: streaming needs methods=None "
                         "or ('record',)")
    threshold = 5.0 if threshold is None else threshold
    unknown = set(methods) - {"robust", "isolation_forest"}
    if unknown or not methods:
        raise ValueError(f"unknown or empty methods: {sorted(unknown) or methods!r} "
                         "(known: 'record', or 'robust' and/or 'isolation_forest')")
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
    data = data.reset_index(drop=True)
    t_ns, y = _to_ns(data["ts"]), data["value"].to_numpy()
    if has_key:
        spans = [(int(ix[0]), int(ix[-1]) + 1) for ix in
                 data.groupby("key", sort=False, dropna=False).indices.values()]
    else:
        spans = [(0, len(data))]
    jobs = _n_jobs(n_jobs, len(spans), len(data))
    series = [(t_ns[a:b], y[a:b]) for a, b in spans]
    if jobs > 1:
        from joblib import Parallel, delayed

        # one task per worker: shipping a series costs more than detecting it
        chunks = [series[i::jobs] for i in range(jobs)]
        done = Parallel(n_jobs=jobs)(delayed(_detect_batch)(c, opts) for c in chunks)
        results = [None] * len(series)
        for i, part in enumerate(done):
            results[i::jobs] = part
    else:
        results = _detect_batch(series, opts)
    for c in ("expected", "score", "is_anomaly", "method", "kind", "reason"):
        data[c] = np.concatenate([r[c] for r in results])
    if only_anomalies:
        data = data[data["is_anomaly"]]
    return data[cols].reset_index(drop=True)


def _n_jobs(n_jobs: int | None, n_series: int, n_points: int) -> int:
    """Worker processes: auto uses the CPUs only when the work pays for starting them."""
    if n_jobs is None:
        if n_series < 2 or n_points < _PARALLEL_MIN_POINTS:
            return 1
        n_jobs = min(os.cpu_count() or 1, 4)
    return max(1, min(int(n_jobs), n_series))


def _detect_batch(series: list[tuple[np.ndarray, np.ndarray]],
                  opts: dict[str, Any]) -> list[dict[str, Any]]:
    return [_detect_series(t, v, opts) for t, v in series]


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
        pw = found["weekly"]
        # a daily season repeats weekly too: call it weekly only when, after removing
        # the weekly mean, a week ago predicts clearly better than a day ago
        acf_w = _acf_at(x, pw)
        acf_d = _acf_at(x, found["daily"], window=pw) if "daily" in found else -1.0
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
    """1.4826 * MAD. When over half the points sit exactly on the baseline (MAD = 0),
    departures that are common (>= 1%: sparse counts, bursts) set the scale by their
    median size; rare ones are anomalies and the mean absolute deviation is used."""
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return 1.0
    dev = np.abs(r - np.median(r))
    scale = _MAD_TO_SD * np.median(dev)
    if scale <= 0:
        nonzero = dev[dev > 0]
        common = len(nonzero) >= max(10, 0.01 * len(dev))
        scale = _MAD_TO_SD * np.median(nonzero) if common else 1.2533 * np.mean(dev)
    return float(scale) if scale > 0 else 1e-9


def _quantum(y: np.ndarray) -> float:
    """Grid step of quantised data: the smallest change between consecutive values,
    when changes of that size are common (>= 1%; else 0: continuous data, or a flat
    series with a rare spike, has no grid)."""
    d = np.abs(np.diff(y[np.isfinite(y)]))
    d = d[d > 0]
    if len(d) == 0:
        return 0.0
    q = float(d.min())
    return q if np.count_nonzero(d <= q * (1 + 1e-9)) >= max(10, 0.01 * len(y)) else 0.0


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
    if m > _STL_MAX_POINTS or p > _STL_MAX_PERIOD:
        return rough - np.median(profile)
    from statsmodels.tsa.seasonal import STL

    # STL runs non-robust (robust=True is ~7x slower): Huber-clip the residuals of the
    # robust rough decomposition first so outliers cannot leak into the season.
    resid = detrended - rough
    scale = _robust_scale(resid)
    clean = rough + np.clip(resid, -_STL_CLIP * scale, _STL_CLIP * scale)
    trend_len = int(np.ceil(1.5 * p / (1 - 1.5 / 7)))  # statsmodels' default span
    trend_len += trend_len % 2 == 0
    low_pass = p + 1 + (p % 2)  # odd and > period, as STL requires
    fit = STL(clean, period=p, seasonal=_STL_SEASONAL, robust=False, seasonal_jump=1,
              trend=trend_len, trend_jump=max(1, trend_len // 10),
              low_pass=low_pass, low_pass_jump=max(1, low_pass // 10)).fit(inner_iter=_STL_INNER)
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
    # the jump statistic is flat near the change: place it at the split of the window
    # around it that best fits the two levels (least absolute deviations)
    refined = []
    for i, lo, hi in zip(idx, left[idx], right[idx], strict=True):
        a, b = max(i - w, 0), min(i + w, len(s))
        seg = s[a:b]
        cost_lo = np.concatenate([[0.0], np.cumsum(np.nan_to_num(np.abs(seg - lo)))])
        cost_hi = np.concatenate([[0.0], np.cumsum(np.nan_to_num(np.abs(seg - hi)))])
        refined.append(a + int(np.argmin(cost_lo + cost_hi[-1] - cost_hi)))
    return np.asarray(refined, dtype="int64"), left[idx], right[idx], jump[idx] / scale


def _if_scores(feats: np.ndarray, rows: np.ndarray | None, contamination: float | str,
               seed: int) -> tuple[np.ndarray, float]:
    """IsolationForest scores in (0, 1) of ``rows`` (None = all) and the flag cut-off.

    Trained on every point but each tree sees only ``max_samples`` of them, so the
    cost is in scoring; with ``rows`` only candidate points are scored.
    """
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=_IF_TREES, max_samples=min(256, len(feats)),
                             random_state=seed).fit(feats)
    sub = feats if rows is None else feats[rows]
    raw = -forest.score_samples(sub) if len(sub) else np.zeros(0)
    # -score_samples is the paper's s(x, n): ~0.5 for ordinary points, -> 1 if isolated
    if contamination == "auto":
        return raw, _IF_AUTO_THRESHOLD
    return raw, float(np.quantile(raw, 1.0 - float(contamination)))


_FEATURES = ("value", "level", "spread", "deviation", "seasonal residual", "first difference")


def _detect_series(t_ns: np.ndarray, y: np.ndarray, opts: dict[str, Any]) -> dict[str, Any]:
    """Detect anomalies in one sorted series; arrays aligned with the input rows."""
    n = len(y)
    out: dict[str, Any] = {"expected": np.full(n, np.nan), "score": np.zeros(n),
                           "is_anomaly": np.zeros(n, bool)}
    out.update({c: np.full(n, "", object) for c in ("method", "kind", "reason")})
    ok = np.flatnonzero(np.isfinite(y))
    if len(ok) < _MIN_POINTS:
        out["expected"][ok] = np.median(y[ok]) if len(ok) else np.nan
        return out
    yv = y[ok]
    pos, m, step = _regularise(t_ns[ok])
    counts = np.bincount(pos, minlength=m)
    filled = counts > 0
    grid = np.full(m, np.nan)  # duplicates on one grid step are averaged
    grid[filled] = np.bincount(pos, weights=yv, minlength=m)[filled] / counts[filled]
    gi = np.interp(np.arange(m), np.flatnonzero(filled), grid[filled])

    p, season = _resolve_period(opts["period"], gi, step)
    window = max(p, 9) if p else _NOSEASON_WINDOW
    seasonal = _seasonal(gi, p, window)
    deseason = grid - seasonal
    level = _rolling_median(deseason, window)
    expected = level + seasonal
    resid = yv - expected[pos]
    # floored by the data's grid step: on quantised series (values on a 0.066 grid)
    # the MAD of residuals collapses and ordinary noise became "22.9 MADs" away
    scale = max(_robust_scale(resid), _quantum(yv))
    z = resid / scale
    thr = opts["threshold"]
    thr_pt = np.where(z >= 0, _tail_threshold(z, thr), _tail_threshold(-z, thr))
    st = {"score": np.zeros(len(yv)), "method": np.full(len(yv), "", object),
          "kind": np.where(z >= 0, "spike", "dip").astype(object),
          "reason": np.full(len(yv), "", object)}
    if "robust" in opts["methods"]:
        st["score"] = np.abs(z) / (np.abs(z) + thr_pt)
        idx, before, after, stat = _level_shifts(deseason, max(window // 2, 8), scale,
                                                 _LEVEL_SHIFT_FRACTION * thr)
        pts = np.searchsorted(pos, idx)  # first observed point at or after the change
        for i, b, a, jump in zip(pts, before, after, stat, strict=True):
            s_ls = jump / (jump + _LEVEL_SHIFT_FRACTION * thr)
            if i < len(pos) and s_ls > st["score"][i]:
                st["score"][i], st["kind"][i] = s_ls, "level_shift"
                st["reason"][i] = f"level shift: rolling median moved from {b:.4g} to {a:.4g}"
        st["method"][st["score"] >= 0.5] = "robust"
    if "isolation_forest" in opts["methods"] and len(yv) >= 32:
        feats = lambda: _features(yv, pos, grid, level, seasonal, resid, scale, window)  # noqa: E731
        _forest_pass(st, feats, z, thr_pt, opts)

    flagged = st["score"] >= 0.5
    season_txt = f"{season} season" if p else "no season"
    base = "seasonal baseline" if p else "rolling baseline"
    for i in np.flatnonzero(flagged & (st["reason"] == "")):
        side = "above" if z[i] >= 0 else "below"
        st["reason"][i] = (f"value {yv[i]:.4g} is {abs(z[i]):.1f} MADs {side} the {base} "
                           f"{expected[pos[i]]:.4g} ({season_txt})")
    out["expected"][ok] = expected[pos]
    out["score"][ok] = np.round(st["score"], 4)
    out["is_anomaly"][ok] = flagged
    for c in ("method", "kind", "reason"):
        out[c][ok] = np.where(flagged, st[c], "")
    return out


def _forest_pass(st: dict[str, np.ndarray], make_features, z: np.ndarray, thr_pt: np.ndarray,
                 opts: dict[str, Any]) -> None:
    """Add IsolationForest evidence to the per-point state ``st`` in place."""
    both = "robust" in opts["methods"]
    rows = None
    if both and opts["contamination"] == "auto":
        # damped, the forest cannot reach 0.5 below half the corroboration level:
        # score only those candidates (scoring is the bulk of the cost at 1M points)
        rows = np.flatnonzero(np.abs(z) >= 0.5 * _IF_CORROBORATION * thr_pt)
        if len(rows) == 0:
            return
    feats = make_features()
    raw, cut = _if_scores(feats, rows, opts["contamination"], opts["random_state"])
    rows = np.arange(len(z)) if rows is None else rows
    s_if = np.where(raw >= cut, 0.5 + 0.5 * (raw - cut) / max(1.0 - cut, 1e-9),
                    0.5 * raw / max(cut, 1e-9))  # cut -> 0.5, like the robust score
    if both:  # alone, the forest flags many clean extremes
        s_if = s_if * np.minimum(1.0, np.abs(z[rows]) / (_IF_CORROBORATION * thr_pt[rows]))
    hit = rows[s_if >= 0.5]
    st["method"][hit[st["method"][hit] == "robust"]] = "robust+isolation_forest"
    only = hit[st["method"][hit] == ""]
    st["method"][only] = "isolation_forest"
    st["kind"][only[np.abs(z[only]) < thr_pt[only]]] = "pattern"
    st["score"][rows] = np.maximum(st["score"][rows], s_if)
    raw_of = dict(zip(rows.tolist(), raw.tolist(), strict=True))
    for i in only:
        top = np.argsort(-np.abs(feats[i, 2:]))[:2] + 2
        detail = ", ".join(f"{_FEATURES[j]} {feats[i, j]:+.1f} MADs" for j in top)
        st["reason"][i] = f"isolation forest: unusual combination (score {raw_of[i]:.2f}): {detail}"


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
    """IsolationForest features (``_FEATURES``), in residual MADs so they are scale-free."""
    med = np.median(yv)
    spread = _MAD_TO_SD * _rolling_median(np.abs(grid - level - seasonal), window)
    diff = np.diff(grid, prepend=np.nan)
    cols = [yv - med, level[pos] - med, spread[pos], yv - level[pos], resid, diff[pos]]
    return np.nan_to_num(np.column_stack(cols) / scale, nan=0.0, posinf=0.0, neginf=0.0)
