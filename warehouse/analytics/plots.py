"""PNG charts for the analytics commands (``--plot FILE.png``), drawn with matplotlib."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _figure(title: str):
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig, ax


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame, path, title: str) -> Path:
    fig, ax = _figure(title)
    tail = history.sort_values("ts").tail(max(len(forecast) * 6, 200))
    ax.plot(tail["ts"], tail["value"], color="0.3", lw=1, label="history")
    ax.plot(forecast["ts"], forecast["forecast"], color="C0", lw=1.5, label="forecast")
    for level, alpha in (("95", 0.15), ("80", 0.3)):
        if f"lo_{level}" in forecast:
            ax.fill_between(forecast["ts"], forecast[f"lo_{level}"], forecast[f"hi_{level}"],
                            color="C0", alpha=alpha, label=f"{level}% interval")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_anomalies(series: pd.DataFrame, found: pd.DataFrame, path, title: str) -> Path:
    fig, ax = _figure(title)
    for key, part in series.groupby("key") if "key" in series else [(None, series)]:
        ax.plot(part["ts"], part["value"], lw=0.8, label=key)
    if len(found):
        ax.scatter(found["ts"], found["value"], color="red", s=18, zorder=3, label="anomaly")
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def plot_trend(series: pd.DataFrame, result: pd.DataFrame, path, title: str) -> Path:
    fig, ax = _figure(title)
    ax.plot(series["ts"], series["value"], ".", ms=3, color="0.4", label="values")
    for row in result.itertuples():
        for ts in getattr(row, "change_points", []) or []:
            ax.axvline(pd.Timestamp(ts), color="C3", ls="--", lw=1)
    if len(result):
        row = result.iloc[0]
        days = (series["ts"] - series["ts"].min()).dt.total_seconds() / 86400
        centre = days.mean()
        ax.plot(series["ts"], row["mean"] + row["slope_per_day"] * (days - centre), color="C0",
                lw=2, label=f"trend {row['slope_per_day']:+.3g}/day")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_bars(labels, values, path, title: str, xlabel: str) -> Path:
    fig, ax = _figure(title)
    ax.barh(list(labels)[::-1], list(values)[::-1], color="C0")
    ax.set_xlabel(xlabel)
    return _save(fig, path)
