"""Compare two sets of runs (two recipes, two periods, two hosts...) metric by metric.

Pure functions over ``runs`` / ``step_runs`` frames (``docs/data-model.md``). Each
metric row carries the values for both sides, the difference, a test matched to
the metric and an effect size, so "significant" and "large" are not confused:

- durations (p50 and per-step means): Mann-Whitney U with Cliff's delta — rank
  based, so skewed, heavy-tailed durations need no transformation;
- mean duration: Welch's t on log durations with Cohen's d on the log scale;
- p95 duration: a permutation test of the p95 difference (seeded, 2000 rounds),
  with Cohen's h on the shares of each side above the pooled p95;
- failure rate: Fisher's exact test with Cohen's h.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["cliffs_delta", "compare"]

_MIN_N = 3  # fewer runs on either side: no test, NaN p-value and a note
_PERM_ROUNDS = 2000  # permutations for the p95 test (p-values resolve to ~0.0005)
_PERM_MAX_N = 4000
# Romano et al. (2006) thresholds for |Cliff's delta|; Cohen (1988) for d and h
_CLIFF = (0.147, 0.33, 0.474)
_COHEN_D = (0.2, 0.5, 0.8)
_COHEN_H = (0.2, 0.5, 0.8)
_LABELS = ("negligible", "small", "medium", "large")
_FINISHED = {"succeeded", "failed", "cancelled"}


def compare(
    a_runs: pd.DataFrame,
    b_runs: pd.DataFrame,
    *,
    labels: Sequence[str] = ("a", "b"),
    a_steps: pd.DataFrame | None = None,
    b_steps: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare run metrics of two groups of runs with tests and effect sizes.

    Parameters
    ----------
    a_runs, b_runs : DataFrame
        ``runs`` rows with ``duration_us`` and, if available, ``status``. Runs still
        running are ignored; durations come from succeeded runs when statuses are
        known (a failure that stops early would otherwise look "fast").
    labels : (str, str)
        Names of the two sides; they name the value columns (default "a", "b").
    a_steps, b_steps : DataFrame, optional
        ``step_runs`` rows of those runs: adds one ``step:<name> mean_s`` row per
        step name present on both sides (time per run spent in that step).
    alpha : float
        Significance level for ``significant``.

    Returns
    -------
    DataFrame
        Rows: runs, failure_rate, duration_p50_s, duration_mean_s, duration_p95_s,
        then the step rows. Columns: ``metric``, ``<labels[0]>``, ``<labels[1]>``,
        ``diff`` (b - a), ``rel_diff`` (diff / a), ``test``, ``p_value``,
        ``effect_size`` (sign: b relative to a), ``effect_label``
        (negligible/small/medium/large), ``significant`` and ``note``.
    """
    la, lb = (str(x) for x in labels)
    if la == lb:
        raise ValueError("labels must differ")
    a_fin, b_fin = _finished(a_runs), _finished(b_runs)
    rows = [_row("runs", len(a_fin), len(b_fin), "", np.nan, np.nan, "", "count only")]
    rows.append(_failure_row(a_fin, b_fin))
    da, db = _durations_s(a_fin), _durations_s(b_fin)
    rows.append(_rank_row("duration_p50_s", da, db, np.median))
    rows.append(_log_t_row("duration_mean_s", da, db))
    rows.append(_tail_row("duration_p95_s", da, db))
    if a_steps is not None and b_steps is not None:
        sa, sb = _step_totals(a_steps, a_fin), _step_totals(b_steps, b_fin)
        for name in sorted(set(sa) & set(sb)):
            rows.append(_rank_row(f"step:{name} mean_s", sa[name], sb[name], np.mean))
    out = pd.DataFrame(rows)
    out["rel_diff"] = out["diff"] / out["a"].where(out["a"] != 0)
    out["significant"] = out["p_value"] < alpha
    out["effect_label"] = [_label(k, e) for k, e in zip(out["kind"], out["effect_size"],
                                                         strict=True)]
    out = out.rename(columns={"a": la, "b": lb})
    return out[["metric", la, lb, "diff", "rel_diff", "test", "p_value", "effect_size",
                "effect_label", "significant", "note"]]


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Cliff's delta P(b > a) - P(b < a), from the Mann-Whitney U statistic."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return np.nan
    u_b = stats.mannwhitneyu(b, a, alternative="two-sided").statistic
    return float(2.0 * u_b / (len(a) * len(b)) - 1.0)


def _row(metric, a, b, test, p, effect, kind, note="") -> dict:
    diff = b - a if np.isfinite(a) and np.isfinite(b) else np.nan
    return {"metric": metric, "a": float(a), "b": float(b), "diff": float(diff), "test": test,
            "p_value": float(p), "effect_size": float(effect), "kind": kind, "note": note}


def _too_few(a: np.ndarray, b: np.ndarray) -> str:
    if min(len(a), len(b)) < _MIN_N:
        return f"too few runs for a test (n={len(a)} vs {len(b)}, need {_MIN_N})"
    return ""


def _stat(fn, x: np.ndarray) -> float:
    return float(fn(x)) if len(x) else np.nan


def _rank_row(metric: str, a: np.ndarray, b: np.ndarray, summary) -> dict:
    note = _too_few(a, b)
    if note:
        return _row(metric, _stat(summary, a), _stat(summary, b), "mann-whitney u",
                    np.nan, np.nan, "cliff", note)
    p = stats.mannwhitneyu(b, a, alternative="two-sided").pvalue
    return _row(metric, summary(a), summary(b), "mann-whitney u", p, cliffs_delta(a, b),
                "cliff", f"n={len(a)} vs {len(b)}")


def _log_t_row(metric: str, a: np.ndarray, b: np.ndarray) -> dict:
    note = _too_few(a, b)
    la, lb = np.log(a[a > 0]), np.log(b[b > 0])
    if note or min(len(la), len(lb)) < _MIN_N:
        return _row(metric, _stat(np.mean, a), _stat(np.mean, b), "welch t (log)", np.nan,
                    np.nan, "cohen_d", note or "too few positive durations")
    p = stats.ttest_ind(lb, la, equal_var=False).pvalue
    pooled = np.sqrt((la.var(ddof=1) + lb.var(ddof=1)) / 2.0)
    d = (lb.mean() - la.mean()) / pooled if pooled > 0 else np.nan
    return _row(metric, a.mean(), b.mean(), "welch t (log)", p, d, "cohen_d",
                f"n={len(a)} vs {len(b)}; effect is Cohen's d of log durations")


def _tail_row(metric: str, a: np.ndarray, b: np.ndarray) -> dict:
    note = _too_few(a, b)
    pa, pb = _stat(_p95, a), _stat(_p95, b)
    test = "permutation (p95 difference)"
    if note:
        return _row(metric, pa, pb, test, np.nan, np.nan, "cohen_h", note)
    rng = np.random.default_rng(0)  # seeded: the same inputs give the same p-value
    # cap the work: subsample both sides proportionally past _PERM_MAX_N runs
    if len(a) + len(b) > _PERM_MAX_N:
        frac = _PERM_MAX_N / (len(a) + len(b))
        a = rng.choice(a, max(_MIN_N, int(len(a) * frac)), replace=False)
        b = rng.choice(b, max(_MIN_N, int(len(b) * frac)), replace=False)
    pooled = np.concatenate([a, b])
    observed = abs(_p95(b) - _p95(a))
    extreme = 0
    for _ in range(_PERM_ROUNDS // 200):
        perm = rng.permuted(np.tile(pooled, (200, 1)), axis=1)
        diff = np.percentile(perm[:, len(a):], 95, axis=1) - np.percentile(perm[:, :len(a)],
                                                                           95, axis=1)
        extreme += int((np.abs(diff) >= observed - 1e-12).sum())
    p = (1 + extreme) / (1 + _PERM_ROUNDS)
    # effect: Cohen's h between the shares of each side above the pooled p95
    cut = _p95(pooled)
    sa, sb = float((a > cut).mean()), float((b > cut).mean())
    return _row(metric, pa, pb, test, p, _cohen_h(sa, sb), "cohen_h",
                f"{_PERM_ROUNDS} permutations; runs above pooled p95 {cut:.3g} s: "
                f"{sa:.0%} vs {sb:.0%} (effect: Cohen's h of these shares)")


def _p95(x: np.ndarray) -> float:
    return float(np.percentile(x, 95))


def _failure_row(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    if "status" not in a or "status" not in b:
        return _row("failure_rate", np.nan, np.nan, "fisher exact", np.nan, np.nan, "cohen_h",
                    "no status column")
    fa, fb = int((a["status"] == "failed").sum()), int((b["status"] == "failed").sum())
    na, nb = len(a), len(b)
    ra, rb = (fa / na if na else np.nan), (fb / nb if nb else np.nan)
    if min(na, nb) < _MIN_N:
        return _row("failure_rate", ra, rb, "fisher exact", np.nan, np.nan, "cohen_h",
                    f"too few runs for a test (n={na} vs {nb}, need {_MIN_N})")
    p = stats.fisher_exact([[fa, na - fa], [fb, nb - fb]]).pvalue
    return _row("failure_rate", ra, rb, "fisher exact", p, _cohen_h(ra, rb), "cohen_h",
                f"failed {fa}/{na} vs {fb}/{nb}")


def _cohen_h(p1: float, p2: float) -> float:
    return float(2.0 * np.arcsin(np.sqrt(p2)) - 2.0 * np.arcsin(np.sqrt(p1)))


def _label(kind: str, effect: float) -> str:
    cuts = {"cliff": _CLIFF, "cohen_d": _COHEN_D, "cohen_h": _COHEN_H}.get(kind)
    if cuts is None or not np.isfinite(effect):
        return ""
    return _LABELS[int(np.searchsorted(cuts, abs(effect), side="right"))]


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    if "status" in runs:
        return runs[runs["status"].isin(_FINISHED)]
    return runs[pd.to_numeric(runs["duration_us"], errors="coerce").notna()]


def _durations_s(runs: pd.DataFrame) -> np.ndarray:
    if "status" in runs:
        runs = runs[runs["status"] == "succeeded"]
    d = pd.to_numeric(runs["duration_us"], errors="coerce").to_numpy(float) / 1e6
    return d[np.isfinite(d)]


def _step_totals(steps: pd.DataFrame, runs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Seconds per run spent in each top-level-or-nested step name (retries summed)."""
    steps = steps[steps["run_id"].isin(runs["run_id"])]
    if steps.empty:
        return {}
    per_run = (steps.assign(d=pd.to_numeric(steps["duration_us"], errors="coerce") / 1e6)
               .groupby(["step", "run_id"])["d"].sum(min_count=1).dropna())
    return {str(name): g.to_numpy(float) for name, g in per_run.groupby(level=0)}
