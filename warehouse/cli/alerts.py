"""CLI for alerts (docs/alerts.md). Thin: each command calls the alerts area.

    warehouse alerts list | state
    warehouse alerts add FILE... [--no-check]
    warehouse alerts remove NAME
    warehouse alerts test NAME | --file FILE [--now T]
    warehouse alerts silence add --match L=V ... (--for 2h | --until T) --author A --comment C
    warehouse alerts silence list | expire ID
    warehouse alerts history [--rule R] [--since T] [--limit N] [--deliveries]
"""

from __future__ import annotations

import click

from warehouse.cli.options import database_command, format_option, open_warehouse
from warehouse.cli.output import note, show_frame, show_mapping


def _time(value: str | None, name: str):
    from warehouse.timeparse import aware_timestamp

    try:
        ts = aware_timestamp(value, name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None
    return None if ts is None else ts.to_pydatetime()


def _done(fmt: str, line: str, **fields) -> None:
    """A one-line confirmation as a table, or its fields as CSV/JSON."""
    if fmt == "table":
        click.echo(line)
    else:
        show_mapping(fields, fmt)


def _manager(ctx):
    """``wh.alerts``: the warehouse's AlertManager, or the server's over HTTP."""
    return open_warehouse(ctx).alerts


@click.group("alerts")
def alerts_group() -> None:
    """Alert rules, their state, silences and history (docs/alerts.md)."""


@alerts_group.command("list")
@format_option
@database_command
@click.pass_context
def alerts_list(ctx, fmt) -> None:
    """Stored rules with their kind, interval and how many instances pend or fire."""
    import pandas as pd

    am = _manager(ctx)
    state, errors = am.state(), am.errors
    rows = [{"name": r.name, "kind": r.kind, "enabled": r.enabled, "interval": r.interval,
             "for": r.for_, "pending": int(((state["rule"] == r.name)
                                             & (state["state"] == "pending")).sum()),
             "firing": int(((state["rule"] == r.name) & (state["state"] == "firing")).sum()),
             "error": errors.get(r.name)}
            for r in am.rules.values()]
    show_frame(pd.DataFrame(rows, columns=["name", "kind", "enabled", "interval", "for",
                                           "pending", "firing", "error"]), fmt, title="rules")


@alerts_group.command("state")
@format_option
@database_command
@click.pass_context
def alerts_state(ctx, fmt) -> None:
    """Current alert instances (pending, firing, recently resolved)."""
    show_frame(_manager(ctx).state(), fmt, title="alert instances")


@alerts_group.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--no-check", is_flag=True,
              help="Do not check metrics and SQL against the warehouse (syntax is checked).")
@format_option
@database_command
@click.pass_context
def alerts_add(ctx, files, no_check, fmt) -> None:
    """Add or replace the rules in YAML/JSON FILES (all validated before any is stored)."""
    from warehouse.alerts.rules import load_rules

    am = _manager(ctx)
    rules = [rule for path in files for rule in load_rules(path)]
    if not no_check:
        for rule in rules:
            am.check(rule)
    import pandas as pd

    for rule in rules:
        am.add_rule(rule, check=False)
    stored = pd.DataFrame([{"stored": r.name, "kind": r.kind} for r in rules])
    if fmt == "table":
        for rule in rules:
            click.echo(f"stored rule {rule.name} ({rule.kind})")
    else:
        show_frame(stored, fmt)


@alerts_group.command("remove")
@click.argument("name")
@format_option
@database_command
@click.pass_context
def alerts_remove(ctx, name, fmt) -> None:
    """Delete the rule NAME and its alert instances (history is kept)."""
    _manager(ctx).remove_rule(name)
    _done(fmt, f"removed rule {name}", removed=name)


@alerts_group.command("test")
@click.argument("name", required=False)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Test the rules of this file instead of a stored rule.")
@click.option("--now", default=None, help="Evaluate as of this time (ISO with zone, now-1h).")
@format_option
@database_command
@click.pass_context
def alerts_test(ctx, name, path, now, fmt) -> None:
    """What the rule NAME would select now — nothing is stored or sent."""
    import pandas as pd

    from warehouse.alerts.rules import load_rules

    if (name is None) == (path is None):
        raise click.UsageError("give a rule NAME or --file FILE")
    am = _manager(ctx)
    if path:
        rules = load_rules(path)
    else:
        if name not in am.rules:
            raise click.BadParameter(f"no alert rule named {name!r}", param_hint="NAME")
        rules = [am.rules[name]]
    # a stored rule by name: a viewer may test those (a rule from a file needs an editor)
    frames = [am.test(rule if path else rule.name, _time(now, "--now")) for rule in rules]
    for rule, frame in zip(rules, frames):
        if frame.attrs.get("no_data"):
            note(f"{rule.name}: no data (no_data_state={rule.no_data_state})")
    show_frame(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), fmt,
               title="would fire")


@alerts_group.group("silence")
def silence_group() -> None:
    """Silences: mute matching alerts for a while."""


@silence_group.command("add")
@click.option("--match", "match", multiple=True, required=True,
              help="Label matcher: L=V, L!=V, L=~REGEX, L!~REGEX (repeatable; all must match).")
@click.option("--for", "duration", default=None, help="How long from now, e.g. 2h.")
@click.option("--start", default=None, help="When it starts (default now).")
@click.option("--until", default=None, help="When it ends (instead of --for).")
@click.option("--author", required=True)
@click.option("--comment", required=True)
@format_option
@database_command
@click.pass_context
def silence_add(ctx, match, duration, start, until, author, comment, fmt) -> None:
    """Add a silence; prints its id."""
    from datetime import UTC, datetime, timedelta

    from warehouse.alerts.notify import matchers
    from warehouse.timeparse import interval_us

    try:
        parsed = matchers(match)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--match") from None
    if (duration is None) == (until is None):
        raise click.UsageError("give --for DURATION or --until TIME")
    now = datetime.now(UTC)
    starts = _time(start, "--start") or now
    if duration is not None:
        try:
            ends = starts + timedelta(microseconds=interval_us(duration))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--for") from None
    else:
        ends = _time(until, "--until")
    if ends <= starts:
        raise click.BadParameter("the silence ends before it starts", param_hint="--until")
    silence = _manager(ctx).add_silence(parsed, starts_at=starts, ends_at=ends, author=author,
                                        comment=comment)
    _done(fmt, silence.silence_id, silence_id=silence.silence_id,
          ends_at=ends.isoformat())


@silence_group.command("list")
@format_option
@database_command
@click.pass_context
def silence_list(ctx, fmt) -> None:
    """Silences that have not ended."""
    import pandas as pd

    rows = [{"silence_id": s.silence_id,
             "matchers": " ".join(f"{a}{op}{b}" for a, op, b in s.matchers),
             "starts_at": s.starts_at, "ends_at": s.ends_at, "author": s.author,
             "comment": s.comment}
            for s in _manager(ctx).silences()]
    show_frame(pd.DataFrame(rows, columns=["silence_id", "matchers", "starts_at", "ends_at",
                                           "author", "comment"]), fmt, title="silences")


@silence_group.command("expire")
@click.argument("silence_id")
@format_option
@database_command
@click.pass_context
def silence_expire(ctx, silence_id, fmt) -> None:
    """End the silence SILENCE_ID now."""
    if not _manager(ctx).expire_silence(silence_id):
        raise click.BadParameter(f"no current silence {silence_id!r}", param_hint="SILENCE_ID")
    _done(fmt, f"expired silence {silence_id}", expired=silence_id)


@alerts_group.command("history")
@click.option("--rule", default=None, help="Only this rule.")
@click.option("--since", default=None, help="From this time (ISO with zone, now-1d).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--deliveries", is_flag=True, help="Show notification delivery attempts.")
@format_option
@database_command
@click.pass_context
def alerts_history(ctx, rule, since, limit, deliveries, fmt) -> None:
    """State changes (or delivery attempts), newest first."""
    am = _manager(ctx)
    if deliveries:
        show_frame(am.notifications(limit), fmt, title="deliveries")
    else:
        show_frame(am.history(rule, _time(since, "--since"), limit), fmt, title="alert history")
