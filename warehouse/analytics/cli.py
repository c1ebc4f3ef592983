"""``warehouse forecast | anomalies | trends | bottlenecks | compare``."""

from __future__ import annotations

import click

from warehouse import analytics
from warehouse.analytics import plots
from warehouse.analytics.sources import Selection, series_frame


def _select_options(command):
    for option in reversed([
        click.option("--metric", help="Analyse this metric's series..."),
        click.option("--recipe", help="...or this recipe's run durations (seconds)."),
        click.option("--step", help="With --recipe: this step's durations."),
        click.option("--label", "labels", multiple=True, help="NAME=VALUE series filter."),
        click.option("--start", help="Start (ISO-8601 with offset, or now-30d)."),
        click.option("--end", help="End, exclusive."),
        click.option("--every", help="Bucket width, e.g. 1h (default: raw points / runs)."),
        click.option("--agg", default="mean", show_default=True, help="Bucket aggregate."),
    ]):
        command = option(command)
    return command


def _selection(metric, recipe, step, labels, start, end, every, agg) -> Selection:
    from warehouse.cli import _parse_pairs

    return Selection(metric=metric, recipe=recipe, step=step,
                     labels=_parse_pairs(labels, "--label"), start=start, end=end,
                     every=every, agg=agg)


PLOT = click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
                    help="Also draw a chart to this PNG file.")


def register(main: click.Group) -> None:
    """Add the analytics commands to the ``warehouse`` command group."""
    from warehouse.cli import FORMAT, _open, console, show_frame

    @main.command()
    @_select_options
    @click.option("--horizon", default=24, show_default=True, help="Steps ahead.")
    @click.option("--backtest", "with_backtest", is_flag=True,
                  help="Report MASE, sMAPE and interval coverage instead.")
    @PLOT
    @FORMAT
    @click.pass_context
    def forecast(ctx, metric, recipe, step, labels, start, end, every, agg, horizon,
                 with_backtest, plot_path, fmt):
        """Forecast with 80% and 95% prediction intervals (ETS, seasonality detected)."""
        wh = _open(ctx)
        selection = _selection(metric, recipe, step, labels, start, end, every, agg)
        history = series_frame(wh, selection)
        if with_backtest:
            show_frame(analytics.backtest(history, horizon), fmt, title="backtest")
            return
        result = analytics.forecast(history, horizon)
        show_frame(result, fmt, title=f"forecast: {selection.describe()}")
        if plot_path:
            key = result["key"].iloc[0] if "key" in result else None
            part = history if key is None else history[history["key"] == key]
            shown = result if key is None else result[result["key"] == key]
            chart = plots.plot_forecast(part, shown, plot_path, selection.describe())
            console.print(f"chart: {chart}")

    @main.command()
    @_select_options
    @click.option("--all", "show_all", is_flag=True, help="Every point with its score.")
    @PLOT
    @FORMAT
    @click.pass_context
    def anomalies(ctx, metric, recipe, step, labels, start, end, every, agg, show_all,
                  plot_path, fmt):
        """Anomalous points, each with a score and a reason."""
        selection = _selection(metric, recipe, step, labels, start, end, every, agg)
        series = series_frame(_open(ctx), selection)
        found = analytics.anomalies(series, only_anomalies=not show_all)
        show_frame(found, fmt, title=f"anomalies: {selection.describe()}")
        if plot_path:
            flagged = found[found["is_anomaly"]] if "is_anomaly" in found else found
            chart = plots.plot_anomalies(series, flagged, plot_path, selection.describe())
            console.print(f"chart: {chart}")

    @main.command()
    @_select_options
    @PLOT
    @FORMAT
    @click.pass_context
    def trends(ctx, metric, recipe, step, labels, start, end, every, agg, plot_path, fmt):
        """Slope per day with a confidence interval, and change points."""
        selection = _selection(metric, recipe, step, labels, start, end, every, agg)
        series = series_frame(_open(ctx), selection)
        result = analytics.trends(series)
        show_frame(result, fmt, title=f"trend: {selection.describe()}")
        if plot_path:
            first = series[series["key"] == result["key"].iloc[0]] if "key" in result else series
            chart = plots.plot_trend(first, result.head(1), plot_path, selection.describe())
            console.print(f"chart: {chart}")

    @main.command()
    @click.argument("recipe")
    @click.option("--start")
    @click.option("--end")
    @PLOT
    @FORMAT
    @click.pass_context
    def bottlenecks(ctx, recipe, start, end, plot_path, fmt):
        """Steps of RECIPE ranked by how much they hold its runs back, with advice."""
        result = analytics.bottlenecks(_open(ctx), recipe, start, end)
        if fmt == "table":
            columns = ["step", "runs", "mean_s", "p95_s", "mean_share", "critical_path_freq",
                       "slope_pct_per_day", "getting_slower"]
            show_frame(result[columns].round(3), fmt, title=f"bottlenecks: {recipe}")
            for i, text in enumerate(result["recommendation"].head(3), 1):
                console.print(f"{i}. {text}")
        else:
            show_frame(result, fmt)
        if plot_path:
            chart = plots.plot_bars(result["step"], result["mean_share"], plot_path,
                                    f"{recipe}: mean share of run time", "share of run time")
            console.print(f"chart: {chart}")

    @main.command()
    @click.argument("a")
    @click.argument("b")
    @PLOT
    @FORMAT
    @click.pass_context
    def compare(ctx, a, b, plot_path, fmt):
        """Compare A and B: two recipes, or periods as RECIPE@START..END."""
        result = analytics.compare(_open(ctx), a, b)
        show_frame(result, fmt, title=f"{a} vs {b}")
        if plot_path:
            rows = result[result["metric"].str.startswith("duration")]
            chart = plots.plot_bars(rows["metric"], rows["rel_diff"].fillna(0) * 100, plot_path,
                                    f"{b} relative to {a}", "% difference")
            console.print(f"chart: {chart}")
