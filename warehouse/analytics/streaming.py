"""Streaming (causal) anomaly detection: each score uses only the points up to it.

:class:`StreamingDetector` keeps a bounded state per series and scores new points as
they arrive; its state can be saved (:meth:`StreamingDetector.to_state`, JSON-safe)
and resumed (:meth:`StreamingDetector.from_state`) with identical results, which is
what alert evaluation needs. Feeding a series in one call or in any number of chunks
gives the same scores (the tests check it).

Method ("record detector"): per point, three residual features are computed from the
past only —

* ``dev``:  value minus the median of the previous ``median_window`` points (spikes,
  dips, and a level shift while it is new);
* ``level``: median of the last ``level_window`` points minus that same median (a
  sustained shift that single-point noise hides);
* ``season``: value minus the median of the same phase 1..``cycles`` periods ago, when
  the sampling step gives a whole daily period (a broken daily pattern);
* ``spread``: log ratio of the recent mean absolute change to its long-run median
  (a change of variance, both ways).

Each feature's absolute value is compared with the largest absolute value it took
over the previous ``record_window`` points, and with ``guard`` robust standard
deviations of it (1.4826 x median absolute value, floored by the quantisation step
of the data): ``ratio = |f| / max(record, guard * scale)``. A point is anomalous when
some feature exceeds everything in the recent past by ``margin`` and is at least a
``guard``-sigma event: a self-calibrating rule that needs no per-series threshold
(heavy-tailed series raise their own records) and whose false-alarm rate on
stationary noise is about 1 / ``record_window`` per feature. After a flag, further
flags within ``hold`` points are suppressed (one alert per event).

Score: ``ratio / (ratio + 1 + margin)`` in 0..1, so the default threshold 0.5 is the
point where the record is broken by ``margin``. Measured on NAB: docs/analytics.md.
"""
from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from warehouse.analytics.window_stats import lag_spread, pack, strided_median, to_ns, unpack, window_stat

__all__ = ["DEFAULT_THRESHOLD", "StreamingDetector", "both_ways", "stream_frame",
           "stream_scores"]

_DAY_NS = 86_400 * 10**9
DEFAULT_THRESHOLD = 0.5  # score 0.5 <=> a feature beats its record by ``margin``
_HEAD = 8  # timestamps used to fix the sampling step (fixed count: chunking-invariant)
_MAX_PERIOD = 2_000  # longer daily periods (sub-minute sampling) are not modelled
_MAD_TO_SD = 1.4826
FEATURES = ("dev", "level", "season", "spread")


@dataclass
class _Params:
    record_window: int = 6400
    median_window: int = 2000
    level_window: int = 12
    spread_window: int = 24
    cycles: int = 3
    guard: float = 5.0
    margin: float = 0.02
    hold: int = 30
    warmup: int = 100
    period: int | str | None = "auto"
    features: tuple[str, ...] = FEATURES

    def check(self) -> None:
        for name in ("record_window", "median_window", "level_window", "spread_window",
                     "cycles", "warmup"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.hold < 0 or self.guard < 0 or self.margin < 0:
            raise ValueError("hold, guard and margin must be >= 0")
        unknown = set(self.features) - set(FEATURES)
        if unknown or not self.features:
            raise ValueError(f"unknown or empty features {sorted(unknown)}; known: {FEATURES}")
        if not (self.period in ("auto", None) or (isinstance(self.period, (int, np.integer))
                                                  and self.period >= 2)):
            raise ValueError(f"period must be 'auto', None or an int >= 2: {self.period!r}")


@dataclass
class _State:
    seen: int = 0  # finite points consumed
    head: list[int] = field(default_factory=list)  # first _HEAD timestamps (ns)
    period: int = 0  # 0 = no season (yet)
    resolved: bool = False  # period settled
    last_flag: int = -(10**12)
    season_on: bool = False  # the daily season passed its last check
    quantum: float = 0.0  # smallest positive change seen (the data's grid step)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))  # recent raw values
    absdiff: np.ndarray = field(default_factory=lambda: np.zeros(0))  # recent |changes|
    hist: dict[str, np.ndarray] = field(default_factory=dict)  # recent |feature|


class StreamingDetector:
    """Causal anomaly detector for one series with resumable state.

    ``det = StreamingDetector(); out = det.update(values, ts)`` scores the new points
    (a DataFrame: ``score``, ``is_anomaly``, ``kind``, ``reason``, ``expected``,
    ``feature``); call ``update`` again with the next points. NaN values score 0 and
    do not enter the state. Parameters are documented in the module docstring; the
    defaults were chosen on NAB (docs/analytics.md) and are meant to be left alone.
    """

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, **params: Any) -> None:
        unknown = set(params) - set(_Params.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown parameters {sorted(unknown)}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.threshold = float(threshold)
        self.params = _Params(**params)
        self.params.features = tuple(self.params.features)
        self.params.check()
        self._s = _State()
        if isinstance(self.params.period, (int, np.integer)):
            self._s.period, self._s.resolved = int(self.params.period), True
        elif self.params.period is None:
            self._s.resolved = True

    # -- state -------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-safe snapshot of everything the next score depends on."""
        s, p = self._s, self.params
        return {"version": 1, "threshold": self.threshold,
                "params": {**p.__dict__, "features": list(p.features)},
                "seen": s.seen, "head": list(s.head), "period": s.period,
                "resolved": s.resolved, "last_flag": s.last_flag, "quantum": s.quantum,
                "season_on": s.season_on,
                "x": pack(s.x), "absdiff": pack(s.absdiff),
                "hist": {k: pack(v) for k, v in s.hist.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StreamingDetector:
        """Rebuild a detector from :meth:`to_state` output."""
        if not isinstance(state, dict) or state.get("version") != 1:
            raise ValueError("not a StreamingDetector state (version 1)")
        try:  # stored state comes back from a database: reject anything malformed
            params = dict(state["params"])
            params["features"] = tuple(params["features"])
            det = cls(threshold=state["threshold"], **params)
            s = det._s
            s.seen, s.head = int(state["seen"]), [int(t) for t in state["head"]]
            s.period, s.resolved = int(state["period"]), bool(state["resolved"])
            s.last_flag, s.quantum = int(state["last_flag"]), float(state["quantum"])
            s.season_on = bool(state["season_on"])
            s.x, s.absdiff = unpack(state["x"]), unpack(state["absdiff"])
            s.hist = {str(k): unpack(v) for k, v in state["hist"].items()}
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            raise ValueError(f"invalid StreamingDetector state: {type(exc).__name__}: "
                             f"{exc}") from exc
        p = det.params
        limits = {"x": (s.x, max(p.median_window, p.level_window,
                                 p.cycles * max(s.period, 0) + 1, 2)),
                  "absdiff": (s.absdiff, p.median_window + 2 * p.spread_window)}
        limits.update({f"hist[{k}]": (v, p.record_window) for k, v in s.hist.items()})
        for name, (arr, most) in limits.items():
            if len(arr) > most:
                raise ValueError(f"invalid StreamingDetector state: {name} holds {len(arr)} "
                                 f"values, at most {most} expected")
        if set(s.hist) - set(FEATURES) or s.period < 0 or s.seen < 0:
            raise ValueError("invalid StreamingDetector state: unknown feature or negative "
                             "count")
        return det

    @property
    def period(self) -> int:
        """Seasonal period in samples in use (0: none or not yet known)."""
        return self._s.period

    # -- scoring -----------------------------------------------------------------
    def update(self, values, ts=None) -> pd.DataFrame:
        """Score new points (in time order) and add them to the state.

        Parameters
        ----------
        values : array-like of float
            The next values of the series.
        ts : array-like of timestamps, optional
            Their times; used once, to find the sampling step and so the daily period
            (``period="auto"``). Without timestamps no season is modelled.

        Returns
        -------
        DataFrame
            One row per value: ``score`` (0..1), ``is_anomaly`` (score >= threshold),
            ``kind`` (spike, dip, level_shift, seasonal, variance or ""), ``feature``,
            ``expected`` (the baseline the value was compared with) and ``reason``.
        """
        y = np.asarray(values, dtype="float64").ravel()
        n = len(y)
        out = {"score": np.zeros(n), "is_anomaly": np.zeros(n, bool),
               "kind": np.full(n, "", object), "feature": np.full(n, "", object),
               "expected": np.full(n, np.nan), "reason": np.full(n, "", object)}
        ok = np.flatnonzero(np.isfinite(y))
        if ts is not None and not self._s.resolved:
            t = to_ns(ts)
            if len(t) != n:
                raise ValueError(f"ts has {len(t)} entries for {n} values")
            self._note_times(t[ok])
        if len(ok):
            res = self._score(y[ok])
            for k, v in res.items():
                out[k][ok] = v
        return pd.DataFrame(out)

    def _note_times(self, t: np.ndarray) -> None:
        s = self._s
        need = _HEAD - len(s.head)
        s.head.extend(int(v) for v in t[:need])
        if len(s.head) >= _HEAD:
            steps = np.diff(np.asarray(s.head, dtype="int64"))
            steps = steps[steps > 0]
            s.resolved = True
            if len(steps):
                ratio = _DAY_NS / float(np.median(steps))
                p = int(round(ratio))
                if abs(ratio - p) <= 0.01 * p and 4 <= p <= _MAX_PERIOD:
                    s.period = p

    def _season_on(self, X: np.ndarray, m: int, idx: np.ndarray) -> np.ndarray:
        """Is the daily season real, per new point? Re-judged at every whole cycle
        (fixed positions, so chunking cannot change it) from the last ``cycles``
        cycles: a cycle ago must be a clearly better guess than half a cycle ago
        (MAD of lag-p vs lag-p/2 differences, as the forecast's season check) —
        false for noise, random walks and trends, true for a repeating shape."""
        s, p = self._s, self.params
        per = s.period
        on = np.full(len(idx), s.season_on)
        span = p.cycles * per
        for g in idx[(idx % per == 0) & (idx >= span)]:
            end = m + int(g - idx[0])  # X[:end] holds the points before g
            w = X[end - span:end]
            if len(w) < span:
                continue
            s.season_on = lag_spread(w, per) <= 0.8 * lag_spread(w, per // 2)
            on[idx >= g] = s.season_on
        return on

    def _score(self, y: np.ndarray) -> dict[str, np.ndarray]:
        s, p = self._s, self.params
        n = len(y)
        if not s.resolved and s.seen + n > _HEAD:
            s.resolved = True  # timestamps never came: no season
        X = np.concatenate([s.x, y])
        m = len(s.x)
        idx = s.seen + np.arange(n)  # global position of each new point
        # median of the previous median_window points (causal: shifted by one)
        med = window_stat(X, m, p.median_window, "median", past=True)
        feats: dict[str, np.ndarray] = {}
        expected = med.copy()
        if "dev" in p.features:
            feats["dev"] = y - med
        if "level" in p.features:
            recent = window_stat(X, m, p.level_window, "median", past=False)
            feats["level"] = recent - med
        per = s.period
        if "season" in p.features and per:
            lags = []
            for c in range(1, p.cycles + 1):
                j = np.arange(m, m + n) - c * per
                lag = np.full(n, np.nan)
                ok = (j >= 0) & (idx - c * per >= 0)
                lag[ok] = X[j[ok]]
                lags.append(lag)
            stack = np.vstack(lags)
            have = np.isfinite(stack).any(axis=0)
            base = np.full(n, np.nan)
            if have.any():
                base[have] = np.nanmedian(stack[:, have], axis=0)
            feats["season"] = y - base
            season_on = self._season_on(X, m, idx)
            expected = np.where(have & season_on, base, expected)
        prev = np.r_[s.x[-1:], y[:-1]] if m else np.r_[np.nan, y[:-1]]
        change = np.abs(y - prev)
        pos = change[np.isfinite(change) & (change > 0)]
        quanta = np.minimum.accumulate(np.r_[s.quantum or np.inf,
                                             np.where(np.isfinite(change) & (change > 0),
                                                      change, np.inf)])[:-1]
        if len(pos):
            s.quantum = float(min(s.quantum or np.inf, pos.min()))
        A = np.concatenate([s.absdiff, change])
        if "spread" in p.features:
            sa = pd.Series(A)
            short = sa.rolling(p.spread_window, min_periods=p.spread_window).mean()
            long = short.rolling(p.median_window, min_periods=1).median().shift(p.spread_window)
            floor = np.where(np.isfinite(quanta), quanta, 0.0) + 1e-12
            feats["spread"] = np.log((short.to_numpy()[len(s.absdiff):] + floor)
                                     / (long.to_numpy()[len(s.absdiff):] + floor))
        ratio = np.zeros(n)
        which = np.full(n, "", object)
        qfloor = np.where(np.isfinite(quanta), quanta, 0.0)
        for name in p.features:
            if name not in feats:
                continue
            a = np.abs(feats[name])
            hist = s.hist.get(name, np.zeros(0))
            H = np.concatenate([hist, a])
            record = window_stat(H, len(hist), p.record_window, "max", True, p.warmup)
            scale = _MAD_TO_SD * strided_median(H, len(hist), s.seen - len(hist),
                                                 p.record_window, p.warmup)
            scale = np.maximum(scale, qfloor if name != "spread" else 0.0)
            ref = np.maximum(record, p.guard * scale)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(ref > 0, a / ref, np.where(a > 0, np.inf, 0.0))
            r = np.where(np.isfinite(record) & np.isfinite(scale) & np.isfinite(a), r, 0.0)
            if name == "season":  # its history is kept, but it counts only when seasonal
                r = np.where(season_on, r, 0.0)
            better = r > ratio
            ratio = np.where(better, r, ratio)
            which = np.where(better, name, which)
            s.hist[name] = H[-p.record_window:]
        # one alert per event: flags within `hold` points of the previous one are muted
        cut = 1.0 + p.margin
        muted = np.zeros(n, bool)
        for i in np.flatnonzero(ratio >= cut):
            if idx[i] - s.last_flag <= p.hold:
                muted[i] = True
            else:
                s.last_flag = int(idx[i])
        ratio = np.where(muted, np.minimum(ratio, 0.9), ratio)
        ratio = np.minimum(ratio, 1e12)
        score = ratio / (ratio + cut)
        flagged = score >= self.threshold
        kind = np.full(n, "", object)
        reason = np.full(n, "", object)
        for i in np.flatnonzero(flagged):
            kind[i], reason[i] = _explain(which[i], feats[which[i]][i], y[i], expected[i],
                                          ratio[i], p)
        s.seen += n
        keep = max(p.median_window, p.level_window, p.cycles * per + 1, 2)
        s.x = X[-keep:]
        s.absdiff = A[-(p.median_window + 2 * p.spread_window):]
        return {"score": score, "is_anomaly": flagged, "kind": kind, "feature": which,
                "expected": expected, "reason": reason}


def _explain(name: str, f: float, y: float, base: float, ratio: float,
             p: _Params) -> tuple[str, str]:
    times = "∞" if not np.isfinite(ratio) or ratio >= 1e12 else f"{ratio:.2f}"
    if name == "dev":
        kind = "spike" if f > 0 else "dip"
        side = "above" if f > 0 else "below"
        return kind, (f"value {y:.4g} is {times}x further {side} the median of the last "
                      f"{p.median_window} points ({base:.4g}) than any point of the last "
                      f"{p.record_window}")
    if name == "level":
        return "level_shift", (f"level shift: the median of the last {p.level_window} points "
                               f"moved {f:+.4g} from the long-run median, {times}x the "
                               f"largest such move of the last {p.record_window} points")
    if name == "season":
        return "seasonal", (f"value {y:.4g} breaks the daily pattern (same time on the "
                            f"previous {p.cycles} days: {base:.4g}), {times}x the largest "
                            f"such departure of the last {p.record_window} points")
    return "variance", (f"variance change: recent changes are {np.exp(f):.3g}x their usual "
                        f"size, {times}x the largest such change of the last "
                        f"{p.record_window} points")


def stream_scores(values, ts=None, **params: Any) -> pd.DataFrame:
    """Score a whole series in streaming (causal) mode: one fresh detector, one update."""
    return StreamingDetector(**params).update(values, ts)


def both_ways(values, ts=None, *, threshold: float = DEFAULT_THRESHOLD,
              **params: Any) -> pd.DataFrame:
    """Retrospective scores: the streaming detector forwards; the first ``warmup``
    points, which the forward pass cannot judge (no history yet), are scored by a
    backward pass from the following ``record_window + median_window`` points.
    Same columns as :meth:`StreamingDetector.update`."""
    y = np.asarray(values, dtype="float64").ravel()
    fwd = StreamingDetector(threshold=threshold, **params)
    out = fwd.update(y, ts)
    head = min(len(y), fwd.params.record_window + fwd.params.median_window)
    if head < 2:
        return out
    if ts is not None:
        t = to_ns(ts)[:head]
        rts = pd.to_datetime(2 * t[0] - t[::-1])  # mirrored: increasing, same steps
    else:
        rts = None
    back = StreamingDetector(threshold=threshold, **params).update(y[:head][::-1], rts)
    back = back.iloc[::-1].reset_index(drop=True)
    start = fwd.params.warmup  # the forward pass scores from here on (finite points)
    first = np.flatnonzero(np.isfinite(y))[:start]
    better = first[back["score"].to_numpy()[first] > out["score"].to_numpy()[first]]
    for c in out.columns:
        out.loc[better, c] = back.loc[better, c].to_numpy()
    out["reason"] = np.where(out["reason"].ne("") & np.isin(np.arange(len(out)), better),
                             out["reason"] + " (looking back from later points)",
                             out["reason"])
    return out


def stream_frame(df: pd.DataFrame, *, threshold: float = DEFAULT_THRESHOLD,
                 only_anomalies: bool = True, period: int | str | None = "auto",
                 retrospective: bool = False, **params: Any) -> pd.DataFrame:
    """Streaming scores for a frame of ``ts``, ``value`` (and optional ``key``).

    Each key is scored by its own fresh detector in time order, as if its points had
    arrived one by one (``method`` "streaming"); with ``retrospective=True`` by
    :func:`both_ways` (``method`` "retrospective"). Columns as
    :func:`warehouse.analytics.anomalies.anomalies`.
    """
    missing = {"ts", "value"} - set(df.columns)
    if missing:
        raise ValueError(f"anomalies() needs columns ts and value; missing {sorted(missing)}")
    has_key = "key" in df.columns
    cols = (["key"] if has_key else []) + ["ts", "value", "expected", "score", "is_anomaly",
                                           "method", "kind", "reason"]
    if period in ("daily", "weekly"):
        period = "auto" if period == "daily" else None  # the streaming season is daily
    data = df[["key", "ts", "value"] if has_key else ["ts", "value"]].copy()
    data["value"] = pd.to_numeric(data["value"], errors="coerce").astype("float64")
    data = data.sort_values(["key", "ts"] if has_key else ["ts"], kind="stable")
    data = data.reset_index(drop=True)
    for c in ("expected", "score"):
        data[c] = np.nan if c == "expected" else 0.0
    data["is_anomaly"] = False
    for c in ("method", "kind", "reason"):
        data[c] = ""
    ts_ns = to_ns(data["ts"])  # once: tz-aware timestamps via objects cost seconds
    groups = data.groupby("key", sort=False, dropna=False).indices.values() if has_key \
        else [np.arange(len(data))]
    for rows in groups:
        vals, times = data["value"].to_numpy()[rows], ts_ns[rows]
        if retrospective:
            res = both_ways(vals, times, threshold=threshold, period=period, **params)
        else:
            det = StreamingDetector(threshold=threshold, period=period, **params)
            res = det.update(vals, times)
        for c in ("expected", "score", "is_anomaly", "kind", "reason"):
            data.loc[rows, c] = res[c].to_numpy()
        data.loc[rows[res["is_anomaly"].to_numpy()], "method"] = (
            "retrospective" if retrospective else "streaming")
    data["is_anomaly"] = data["is_anomaly"].astype(bool)
    if only_anomalies:
        data = data[data["is_anomaly"]]
    return data[cols].reset_index(drop=True)
