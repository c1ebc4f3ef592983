"""Compare two sets of runs (two recipes, two periods, two hosts...) metric by metric.

Pure functions over ``runs`` / ``step_runs`` frames (``docs/data-model.md``). Each
metric row carries the values for both sides, the difference, a test matched to
the metric and an effect size, so "significant" and "large" are not confused:

- durations (p50 and per-step means): Mann-Whitney U with Cliff's delta — rank
  based, so skewed, heavy-tailed durations need no transformation;
- mean duration: Welch's t on log durations with Cohen's d on the log scale;
- p95 duration: a permutation test of the p95 difference (seeded, 2000 rounds, all
  drawn at once by an urn walk down the largest values: see _permuted_p95_diffs), with
  Cohen's h on the shares of each side above the pooled p95;
- failure rate: Fisher's exact test with Cohen's h.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["cliffs_delta", "compare"]

_MIN_N = 3  # fewer runs on either side: no test, NaN p-value and a note
_PERM_ROUNDS = 2000  # permutations for the p95 test (p-values resolve to ~0.0005)
_PERM_MAX_N = 20_000  # runs the urn walk takes (more: both sides subsampled)
_URN_BLOCK = 64  # pooled values walked per random draw (see _permuted_p95_diffs)
_MAX_WALK_SHARE = 0.25  # a walk past this share of the runs: shuffle instead
_SHUFFLE_MAX_N = 4000  # runs the shuffle takes (a small side against many runs)
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
    pooled = np.concatenate([a, b])
    # the urn walk for balanced sides; shuffles when one side is so small that the walk
    # would visit most runs. Past the method's cap both sides are subsampled proportionally.
    walk = _walk_share(len(a), len(b)) <= _MAX_WALK_SHARE
    cap = _PERM_MAX_N if walk else _SHUFFLE_MAX_N
    sample_a, sample_b = a, b
    if len(pooled) > cap:
        frac = cap / len(pooled)
        sample_a = rng.choice(a, max(_MIN_N, int(len(a) * frac)), replace=False)
        sample_b = rng.choice(b, max(_MIN_N, int(len(b) * frac)), replace=False)
    observed = abs(_sorted_p95(np.sort(sample_b)) - _sorted_p95(np.sort(sample_a)))
    permute = _permuted_p95_diffs if walk else _shuffled_p95_diffs
    diffs = permute(np.concatenate([sample_a, sample_b]), len(sample_a), rng)
    extreme = int((np.abs(diffs) >= observed - 1e-12).sum())
    p = (1 + extreme) / (1 + _PERM_ROUNDS)
    # effect: Cohen's h between the shares of each side above the pooled p95
    cut = _p95(pooled)
    sa, sb = float((a > cut).mean()), float((b > cut).mean())
    return _row(metric, pa, pb, test, p, _cohen_h(sa, sb), "cohen_h",
                f"{_PERM_ROUNDS} permutations; runs above pooled p95 {cut:.3g} s: "
                f"{sa:.0%} vs {sb:.0%} (effect: Cohen's h of these shares)")


def _p95_ranks(n: int) -> tuple[int, int, float]:
    """np.percentile(x, 95)'s interpolation as ranks from the top: the values of rank
    ``lo`` and ``hi`` (0 = largest) and the weight of ``hi``."""
    h = 0.95 * (n - 1)
    below = int(math.floor(h))
    above = min(below + 1, n - 1)
    return n - 1 - below, n - 1 - above, h - below


def _sorted_p95(x: np.ndarray) -> np.ndarray | float:
    """p95 of ascending ``x`` with the same interpolation as the permuted statistic."""
    lo, hi, w = _p95_ranks(len(x))
    return _lerp(x[len(x) - 1 - lo], x[len(x) - 1 - hi], w)


def _lerp(low, high, w: float):
    return low + (high - low) * w


def _permuted_p95_diffs(pooled: np.ndarray, n_a: int, rng) -> np.ndarray:
    """p95(b) - p95(a) for ``_PERM_ROUNDS`` random splits of ``pooled`` into sides of
    ``n_a`` and the rest, without shuffling the whole sample per round.

    Each side's p95 depends only on its largest ~5% of values. Walking the pooled values
    from the largest down, a random split labels each one "a" with probability
    (a labels left) / (values left) — an urn, exactly a uniform random split — so all
    rounds walk together, one vectorised draw per value, and stop once every round has
    seen the ranks both p95s need: ~10% of the values for balanced sides instead of
    shuffling and partitioning all of them per round (half a year of hourly runs per
    side: 0.5-0.9 s -> 0.04-0.08 s).
    """
    desc = np.sort(pooled)[::-1]
    n, n_b = len(desc), len(desc) - n_a
    lo_a, hi_a, w_a = _p95_ranks(n_a)
    lo_b, hi_b, w_b = _p95_ranks(n_b)
    a_left = np.full(_PERM_ROUNDS, n_a)
    labels = []  # per walked value: which rounds put it on side a
    for block_start in range(0, n, _URN_BLOCK):
        draws = rng.random((min(_URN_BLOCK, n - block_start), _PERM_ROUNDS))
        for offset, u in enumerate(draws):
            is_a = u * (n - block_start - offset) < a_left
            a_left -= is_a
            labels.append(is_a)
        walked = block_start + len(draws)
        taken_a = n_a - a_left
        if taken_a.min() > lo_a and (walked - taken_a).min() > lo_b:
            break
    is_a = np.array(labels)
    count_a = np.cumsum(is_a, axis=0, dtype=np.int32)  # at most n_a; halves the memory
    count_b = np.arange(1, len(is_a) + 1, dtype=np.int32)[:, None] - count_a

    def value_of_rank(counts: np.ndarray, rank: int) -> np.ndarray:
        # the first position where a side holds rank + 1 values is its rank-th largest
        return desc[np.argmax(counts > rank, axis=0)]

    p95_a = _lerp(value_of_rank(count_a, lo_a), value_of_rank(count_a, hi_a), w_a)
    p95_b = _lerp(value_of_rank(count_b, lo_b), value_of_rank(count_b, hi_b), w_b)
    return p95_b - p95_a


def _walk_share(n_a: int, n_b: int) -> float:
    """Expected share of the pooled values the urn walk visits (the scarcer side sets it)."""
    return max((_p95_ranks(n_a)[0] + 2) / n_a, (_p95_ranks(n_b)[0] + 2) / n_b)


def _shuffled_p95_diffs(pooled: np.ndarray, n_a: int, rng) -> np.ndarray:
    """p95(b) - p95(a) over shuffles of the whole sample (a side so small that the urn
    walk would visit most values)."""
    out = []
    for _ in range(_PERM_ROUNDS // 200):
        perm = rng.permuted(np.tile(pooled, (200, 1)), axis=1)
        out.append(np.percentile(perm[:, n_a:], 95, axis=1)
                   - np.percentile(perm[:, :n_a], 95, axis=1))
    return np.concatenate(out)


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
