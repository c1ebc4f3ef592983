"""Fetch the frames the analyses take (``ts``, ``value``, ``key``) from a Warehouse."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Selection:
    """What to analyse: a metric (with labels, bucketed by ``every`` with ``agg``) or the
    run durations of a recipe (or of one of its steps), in [start, end)."""

    metric: str | None = None
    recipe: str | None = None
    step: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    start: object = None
    end: object = None
    every: str | None = None
    agg: str = "mean"

    def __post_init__(self):
        if (self.metric is None) == (self.recipe is None):
            raise ValueError("choose what to analyse: a metric or a recipe (not both)")
        if self.step is not None and self.recipe is None:
            raise ValueError("step needs a recipe")

    def describe(self) -> str:
        if self.metric:
            labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
            return self.metric + (f"{{{labels}}}" if labels else "")
        return f"{self.recipe}{'/' + self.step if self.step else ''} duration (s)"

    @staticmethod
    def parse_period(spec) -> dict:
        """``"recipe"``, ``"recipe@START..END"`` or a dict → {recipe, start, end, label}."""
        if isinstance(spec, dict):
            out = dict(spec)
        else:
            match = re.fullmatch(r"([^@]+)(?:@([^.]*)\.\.(.*))?", str(spec).strip())
            if not match:
                raise ValueError(f"{spec!r}: expected RECIPE or RECIPE@START..END")
            out = {"recipe": match[1], "start": match[2] or None, "end": match[3] or None}
        if "recipe" not in out:
            raise ValueError(f"{spec!r}: no recipe given")
        period = f"@{out.get('start') or ''}..{out.get('end') or ''}"
        out.setdefault("label", out["recipe"] + (period if period != "@.." else ""))
        return out


def series_frame(wh, selection: Selection) -> pd.DataFrame:
    """``ts``, ``value``, ``key`` rows for the selection (one key per series)."""
    if selection.metric is not None:
        frame = wh.points(selection.metric, selection.start, selection.end,
                          labels=selection.labels or None, every=selection.every,
                          agg=selection.agg)
        if frame.empty:
            return pd.DataFrame(columns=["ts", "value", "key"])
        keys = frame["labels"].map(
            lambda lab: ",".join(f"{k}={v}" for k, v in sorted(lab.items())) or selection.metric)
        return pd.DataFrame({"ts": frame["ts"], "value": frame["value"].astype(float),
                             "key": keys}).reset_index(drop=True)
    if selection.step is None:
        runs = wh.runs(recipe=selection.recipe, start=selection.start, end=selection.end)
        done = runs[runs["duration_us"].notna()]
        frame = pd.DataFrame({"ts": done["started_at"],
                              "value": done["duration_us"].astype(float) / 1e6,
                              "key": selection.recipe})
    else:
        steps = wh.steps(recipe=selection.recipe, start=selection.start, end=selection.end)
        done = steps[(steps["step"] == selection.step) & steps["duration_us"].notna()]
        frame = pd.DataFrame({"ts": done["started_at"],
                              "value": done["duration_us"].astype(float) / 1e6,
                              "key": f"{selection.recipe}/{selection.step}"})
    if frame.empty:
        raise ValueError(f"no finished runs for {selection.describe()} in that period")
    if selection.every:
        frame = (frame.set_index("ts")["value"].resample(selection.every).agg(selection.agg
                 if selection.agg in ("mean", "min", "max", "sum", "count") else "mean")
                 .dropna().rename("value").reset_index().assign(key=frame["key"].iloc[0]))
    return frame.reset_index(drop=True)


def runs_of(wh, recipe: str, start=None, end=None, *, with_steps: bool = True):
    """Runs (and their steps) of a recipe in [start, end)."""
    runs = wh.runs(recipe=recipe, start=start, end=end)
    if runs.empty:
        raise ValueError(f"no runs of recipe {recipe!r} in that period")
    steps = wh.steps(recipe=recipe, start=start, end=end) if with_steps else None
    return runs, steps
