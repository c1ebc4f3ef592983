"""``warehouse forecast | anomalies | trends | bottlenecks | compare``.

Each command is a plain click command listed in ``warehouse/cli/__init__.py``; an option
for one command is one more decorator on it (for example ``--streaming`` goes on
:func:`anomalies`, passed on to :func:`warehouse.analytics.anomalies`). The options that
choose a series (``--metric``/``--recipe``/...) are shared through :func:`select_options`.
"""

from __future__ import annotations

import click

from warehouse.cli.options import database_command, format_option, open_warehouse, parse_pairs
from warehouse.cli.output import note, printable, show_frame

SELECT_OPTIONS = (
    click.option("--metric", help="Analyse this metric's series..."),
    click.option("--recipe", help="...or this recipe's run durations (seconds)."),
    click.option("--step", help="With --recipe: this step's durations."),
    click.option("--label", "labels", multiple=True, help="NAME=VALUE series filter."),
    click.option("--start", help="Start (ISO-8601 with offset, or now-30d)."),
    click.option("--end", help="End, exclusive."),
    click.option("--every", help="Bucket width, e.g. 1h (default: raw points / runs)."),
    click.option("--agg", default="mean", show_default=True, help="Bucket aggregate."),
)
PLOT = click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
                    help="Also draw a chart to this PNG file.")


def select_options(command):
    """The options that choose what to analyse (a metric's series or a recipe's runs)."""
    for option in reversed(SELECT_OPTIONS):
        command = option(command)
    return command


def selection(metric, recipe, step, labels, start, end, every, agg):
    """The :class:`~warehouse.analytics.sources.Selection` the options describe."""
    from warehouse.analytics.sources import Selection

    return Selection(metric=metric, recipe=recipe, step=step,
                     labels=parse_pairs(labels, "--label"), start=start, end=end,
                     every=every, agg=agg)


def _chart(path) -> None:
    note(f"chart: {path}")  # stderr: keeps --format json/csv output parseable


@click.command()
@select_options
@click.option("--horizon", default=24, show_default=True, type=click.IntRange(min=1),
              help="Steps ahead.")
@click.option("--backtest", "with_backtest", is_flag=True,
              help="Report MASE, sMAPE and interval coverage instead.")
@PLOT
@format_option
@database_command
@click.pass_context
def forecast(ctx, metric, recipe, step, labels, start, end, every, agg, horizon,
             with_backtest, plot_path, fmt):
    """Forecast with 80% and 95% prediction intervals (ETS, seasonality detected)."""
    from warehouse import analytics
    from warehouse.analytics import plots
    from warehouse.analytics.sources import series_frame

    chosen = selection(metric, recipe, step, labels, start, end, every, agg)
    history = series_frame(open_warehouse(ctx), chosen)
    if with_backtest:
        show_frame(analytics.backtest(history, horizon), fmt, title="backtest")
        return
    result = analytics.forecast(history, horizon)
    show_frame(result, fmt, title=f"forecast: {chosen.describe()}")
    if plot_path:
        key = result["key"].iloc[0] if "key" in result else None
        part = history if key is None else history[history["key"] == key]
        shown = result if key is None else result[result["key"] == key]
        _chart(plots.plot_forecast(part, shown, plot_path, chosen.describe()))


@click.command()
@select_options
@click.option("--all", "show_all", is_flag=True, help="Every point with its score.")
@click.option("--streaming", is_flag=True,
              help="Score causally, as alerts do: each point only from the points before it "
                   "(default: retrospective, looking both ways).")
@PLOT
@format_option
@database_command
@click.pass_context
def anomalies(ctx, metric, recipe, step, labels, start, end, every, agg, show_all, streaming,
              plot_path, fmt):
    """Anomalous points, each with a score and a reason."""
    from warehouse import analytics
    from warehouse.analytics import plots
    from warehouse.analytics.sources import series_frame

    chosen = selection(metric, recipe, step, labels, start, end, every, agg)
    series = series_frame(open_warehouse(ctx), chosen)
    found = analytics.anomalies(series, only_anomalies=not show_all,
                                mode="streaming" if streaming else "retrospective")
    show_frame(found, fmt, title=f"anomalies: {chosen.describe()}")
    if plot_path:
        flagged = found[found["is_anomaly"]] if "is_anomaly" in found else found
        _chart(plots.plot_anomalies(series, flagged, plot_path, chosen.describe()))


@click.command()
@select_options
@PLOT
@format_option
@database_command
@click.pass_context
def trends(ctx, metric, recipe, step, labels, start, end, every, agg, plot_path, fmt):
    """Slope per day with a confidence interval, and change points."""
    from warehouse import analytics
    from warehouse.analytics import plots
    from warehouse.analytics.sources import series_frame

    chosen = selection(metric, recipe, step, labels, start, end, every, agg)
    series = series_frame(open_warehouse(ctx), chosen)
    result = analytics.trends(series)
    show_frame(result, fmt, title=f"trend: {chosen.describe()}")
    if plot_path:
        first = series[series["key"] == result["key"].iloc[0]] if "key" in result else series
        _chart(plots.plot_trend(first, result.head(1), plot_path, chosen.describe()))


@click.command()
@click.argument("recipe")
@click.option("--start", help="Runs started at or after this time.")
@click.option("--end", help="...and before this time.")
@PLOT
@format_option
@database_command
@click.pass_context
def bottlenecks(ctx, recipe, start, end, plot_path, fmt):
    """Steps of RECIPE ranked by how much they hold its runs back, with advice."""
    from warehouse import analytics
    from warehouse.analytics import plots

    result = analytics.bottlenecks(open_warehouse(ctx), recipe, start, end)
    if fmt == "table":
        columns = ["step", "runs", "mean_s", "p95_s", "mean_share", "critical_path_freq",
                   "slope_pct_per_day", "getting_slower"]
        show_frame(result[columns].round(3), fmt, title=f"bottlenecks: {recipe}")
        for i, text in enumerate(result["recommendation"].head(3), 1):
            click.echo(printable(f"{i}. {text}"))
    else:
        show_frame(result, fmt)
    if plot_path:
        _chart(plots.plot_bars(result["step"], result["mean_share"], plot_path,
                               f"{recipe}: mean share of run time", "share of run time"))


@click.command()
@click.argument("a")
@click.argument("b")
@PLOT
@format_option
@database_command
@click.pass_context
def compare(ctx, a, b, plot_path, fmt):
    """Compare A and B: two recipes, or periods as RECIPE@START..END."""
    from warehouse import analytics
    from warehouse.analytics import plots

    result = analytics.compare(open_warehouse(ctx), a, b)
    show_frame(result, fmt, title=f"{a} vs {b}")
    if plot_path:
        rows = result[result["metric"].str.startswith("duration")]
        _chart(plots.plot_bars(rows["metric"], rows["rel_diff"].fillna(0) * 100, plot_path,
                               f"{b} relative to {a}", "% difference"))
