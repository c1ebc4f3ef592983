"""Alert routes (``/api/v1/alerts``): the functions of ``wh.alerts`` over HTTP — rules (the
same document the YAML/JSON files hold), what a rule would fire now, instance state,
silences, and the history of state changes and deliveries (docs/alerts.md).

Roles: a viewer (read scope) reads everything here and may test a stored rule; an editor
(write scope) adds, removes and test-drives new rules and sets and expires silences; an
admin may do all of that and record a silence as set by someone else. Rule and instance
reads come from the database, so rules another process added are seen at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from warehouse.server.api_read import no_nul
from warehouse.server.auth import Principal, require
from warehouse.server.deps import TABLE_RESPONSES, table_response, warehouse
from warehouse.server.object_routes import Refusal, answers_problems, author_of, records
from warehouse.timeparse import aware_timestamp, interval_us

router = APIRouter(tags=["alerts"], dependencies=[Depends(no_nul)])
_reader, _writer = Depends(require("read")), Depends(require("write"))
_RULE = Path(..., max_length=100, description="a rule's name")
_NOW = Query(None, max_length=100, description="evaluate as of this time (ISO-8601 with a "
                                               "zone, or relative: now-1h)")
_RULE_BODY = {"description": "a rule document, as in the YAML files (docs/alerts.md)"}


def _time(value: str | None, name: str) -> datetime | None:
    stamp = aware_timestamp(value, name)  # a ValueError naming the parameter: 400
    return None if stamp is None else stamp.to_pydatetime()


def _fresh(wh):
    """The served warehouse's AlertManager with rules and instances read again (other
    processes may have changed them; the evaluator thread does the same every few seconds)."""
    wh.alerts.reload()
    return wh.alerts


# -- rules ----------------------------------------------------------------------------------
@router.get("/alerts/rules", summary="Alert rules (documents)", dependencies=[_reader])
@answers_problems
def list_rules(request: Request) -> list[dict]:
    """Every stored rule, as the document that defines it."""
    return [rule.to_dict() for rule in _fresh(warehouse(request)).rules.values()]


@router.get("/alerts/errors", summary="Rules whose last evaluation failed, and why",
            dependencies=[_reader])
def rule_errors(request: Request) -> dict[str, str]:
    """Rule name -> the error of its last evaluation in this server (when it evaluates)."""
    return dict(warehouse(request).alerts.errors)


@router.get("/alerts/rules/{name}", summary="One alert rule", dependencies=[_reader])
@answers_problems
def get_rule(request: Request, name: str = _RULE) -> dict:
    """The rule's document; 404 if there is none of that name."""
    rules = _fresh(warehouse(request)).rules
    if name not in rules:
        raise Refusal(404, f"no alert rule named {name!r}", "unknown-name")
    return rules[name].to_dict()


@router.post("/alerts/rules", summary="Add or replace an alert rule", status_code=201,
             dependencies=[_writer])
@answers_problems
def add_rule(request: Request, rule: dict,
             check: bool = Query(True, description="check the metric, window and SQL against "
                                                   "the warehouse (syntax is always checked)")
             ) -> dict:
    """Validated field by field (422 names the field); replaces a rule of the same name."""
    return warehouse(request).alerts.add_rule(rule, check=check).to_dict()


@router.post("/alerts/rules/check", summary="Validate a rule without storing it",
             dependencies=[_writer])
@answers_problems
def check_rule(request: Request, rule: dict) -> dict:
    """The rule as it would be stored, or a 422 naming the field."""
    return warehouse(request).alerts.check(rule).to_dict()


@router.delete("/alerts/rules/{name}", summary="Remove an alert rule and its instances",
               dependencies=[_writer])
@answers_problems
def remove_rule(request: Request, name: str = _RULE) -> dict:
    """History (alert_events) is kept; 404 if there is no such rule."""
    warehouse(request).alerts.remove_rule(name)
    return {"removed": name}


def _tested(manager, rule, now: str | None) -> dict:
    frame = manager.test(rule, _time(now, "now"))
    return {"no_data": bool(frame.attrs.get("no_data")), "rows": records(frame)}


@router.get("/alerts/rules/{name}/test", summary="What a stored rule would fire now",
            dependencies=[_reader])
@answers_problems
def test_rule(request: Request, name: str = _RULE, now: str | None = _NOW) -> dict:
    """``rows``: rule, labels, value, run_url per instance it selects; ``no_data``. Nothing
    is stored or sent."""
    manager = _fresh(warehouse(request))
    if name not in manager.rules:
        raise Refusal(404, f"no alert rule named {name!r}", "unknown-name")
    return _tested(manager, name, now)


@router.post("/alerts/test", summary="What an unsaved rule would fire now",
             dependencies=[_writer])
@answers_problems
def test_document(request: Request, rule: dict, now: str | None = _NOW) -> dict:
    """The rule is validated (422 naming the field) and evaluated; nothing is stored."""
    from warehouse.alerts.rules import parse_rule

    return _tested(warehouse(request).alerts, parse_rule(rule), now)


# -- instances and history ------------------------------------------------------------------
@router.get("/alerts/instances", summary="Current alert instances", responses=TABLE_RESPONSES,
            dependencies=[_reader])
@answers_problems
def instances(request: Request):
    """rule, state (pending, firing, resolved), labels, value, active_at, fired_at,
    resolved_at, fingerprint."""
    return table_response(request, _fresh(warehouse(request)).state())


@router.get("/alerts/history", summary="Alert state changes (alert_events), newest first",
            responses=TABLE_RESPONSES, dependencies=[_reader])
def history(request: Request, rule: str | None = Query(None, max_length=100),
            since: str | None = Query(None, max_length=100, description="ISO-8601 or now-1d"),
            limit: int = Query(100, ge=1, le=100_000)):
    """changed_at, rule_name, fingerprint, labels, from_state, to_state, value, reason."""
    return table_response(request, warehouse(request).alerts.history(
        rule, _time(since, "since"), limit))


@router.get("/alerts/notifications", summary="Notification delivery attempts, newest first",
            responses=TABLE_RESPONSES, dependencies=[_reader])
def notifications(request: Request, limit: int = Query(100, ge=1, le=100_000)):
    """attempted_at, receiver, channel, group_key, fingerprints, status, attempt, error."""
    return table_response(request, warehouse(request).alerts.notifications(limit))


# -- silences -------------------------------------------------------------------------------
def silence_json(silence) -> dict:
    return {"silence_id": silence.silence_id, "matchers": [list(m) for m in silence.matchers],
            "starts_at": silence.starts_at.isoformat(), "ends_at": silence.ends_at.isoformat(),
            "author": silence.author, "comment": silence.comment}


class NewSilence(BaseModel):
    """Mute matching alerts: ``ends_at`` or ``duration`` (from ``starts_at``, default now)."""

    matchers: list[str | list[str]] = Field(
        ..., min_length=1, max_length=50,
        description='"label=value", "label!=value", "label=~regex", "label!~regex", or '
                    '[label, op, value]; all must match')
    starts_at: str | None = Field(None, max_length=100)
    ends_at: str | None = Field(None, max_length=100)
    duration: str | None = Field(None, max_length=100, description="e.g. 2h")
    author: str | None = Field(None, max_length=200, description="admin only (default: caller)")
    comment: str = Field(..., min_length=1, max_length=4000)


@router.get("/alerts/silences", summary="Silences that have not ended", dependencies=[_reader])
def list_silences(request: Request) -> list[dict]:
    """silence_id, matchers, starts_at, ends_at, author, comment."""
    return [silence_json(s) for s in warehouse(request).alerts.silences()]


@router.post("/alerts/silences", summary="Add a silence", status_code=201)
@answers_problems
def add_silence(request: Request, body: NewSilence, principal: Principal = _writer) -> dict:
    """The silence with its id (to expire it early)."""
    if (body.ends_at is None) == (body.duration is None):
        raise Refusal(422, "give ends_at or duration (not both)", "request-validation",
                      errors=[{"row": None, "field": "ends_at", "message": "or duration"}])
    for index, matcher in enumerate(body.matchers):
        if isinstance(matcher, list) and len(matcher) != 3:
            raise Refusal(422, f"matchers[{index}]: expected [label, op, value]",
                          "request-validation", errors=[{"row": None, "field":
                                                         f"matchers.{index}",
                                                         "message": "[label, op, value]"}])
    starts = _time(body.starts_at, "starts_at") or datetime.now(UTC)
    ends = (_time(body.ends_at, "ends_at") if body.ends_at is not None
            else starts + timedelta(microseconds=interval_us(body.duration)))
    silence = warehouse(request).alerts.add_silence(
        body.matchers, starts_at=starts, ends_at=ends, comment=body.comment,
        author=author_of(principal, body.author))
    return silence_json(silence)


@router.delete("/alerts/silences/{silence_id}", summary="Expire a silence now",
               dependencies=[_writer])
@answers_problems
def expire_silence(request: Request,
                   silence_id: str = Path(..., max_length=100)) -> dict:
    """404 if there is no silence of that id that has not ended."""
    if not warehouse(request).alerts.expire_silence(silence_id):
        raise Refusal(404, f"no current silence {silence_id!r}", "unknown-name")
    return {"expired": silence_id}


__all__ = ["router", "silence_json"]
