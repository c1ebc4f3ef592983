"""Alert rules: what to watch, validated field by field (docs/alerts.md).

A rule is a plain document — from Python, a YAML/JSON file, the CLI or the web UI — with
common fields (name, kind, for, keep_firing_for, interval, labels, annotations,
no_data_state, error_state, enabled) and the fields of its kind:

=================  ==========================================================================
threshold          metric, match, window, every, agg, op, threshold
run_failed         recipe, window
run_duration       recipe, window, max_duration | p95_factor (+ baseline, min_runs)
dead_man           recipe, within
step_error_rate    recipe, step, window, op, threshold, min_runs
sql                query, op, threshold
anomaly            metric, match, window, every, agg, last, score
forecast           metric, match, window, every, agg, horizon, op, threshold, bound
=================  ==========================================================================

Every problem is a :class:`RuleError` naming the rule and the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from warehouse.errors import WarehouseError
from warehouse.timeparse import interval_us

KINDS = ("threshold", "run_failed", "run_duration", "dead_man", "step_error_rate", "sql",
         "anomaly", "forecast")
OPS = (">", "<", ">=", "<=", "==", "!=", "outside", "inside")
STATE_CHOICES = ("alerting", "ok", "keep_last")
AGGS = ("mean", "min", "max", "sum", "count", "first", "last", "p50", "p95", "p99")
COMMON = ("name", "kind", "for", "keep_firing_for", "interval", "labels", "annotations",
          "no_data_state", "error_state", "enabled")

#: Kind -> its own fields with defaults (None: optional, REQUIRED: must be given).
REQUIRED = object()
KIND_FIELDS: dict[str, dict[str, object]] = {
    "threshold": {"metric": REQUIRED, "match": None, "window": "5m", "every": None,
                  "agg": "last", "op": REQUIRED, "threshold": REQUIRED},
    "run_failed": {"recipe": None, "window": "15m"},
    "run_duration": {"recipe": None, "window": "15m", "max_duration": None,
                     "p95_factor": None, "baseline": "7d", "min_runs": 5},
    "dead_man": {"recipe": REQUIRED, "within": REQUIRED},
    "step_error_rate": {"recipe": REQUIRED, "step": None, "window": "1h", "op": ">",
                        "threshold": REQUIRED, "min_runs": 1},
    "sql": {"query": REQUIRED, "op": None, "threshold": None},
    "anomaly": {"metric": REQUIRED, "match": None, "window": "1d", "every": None,
                "agg": "mean", "last": 1, "score": None},
    "forecast": {"metric": REQUIRED, "match": None, "window": "7d", "every": REQUIRED,
                 "agg": "mean", "horizon": REQUIRED, "op": ">", "threshold": REQUIRED,
                 "bound": "forecast"},
}
#: Kinds whose condition depends on time passing, not only on new data: evaluated on
#: their interval even when no write touches them.
TIME_BASED = ("dead_man", "threshold", "run_duration", "step_error_rate", "sql", "anomaly",
              "forecast", "run_failed")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: Placeholders an annotation may use; anything else in braces is refused at save time, so
#: a template can never reach attributes the way str.format would.
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KNOWN_PLACEHOLDER = re.compile(r"^(value|rule|run_url|run_id|labels\.[A-Za-z_][A-Za-z0-9_]*)$")
MAX_TEXT = 4000


class RuleError(WarehouseError, ValueError):
    """A rule refused on save: names the rule and the field that is wrong."""

    def __init__(self, rule: str | None, field_name: str, message: str):
        self.rule, self.field, self.message = rule, field_name, message
        where = f"alert rule {rule!r}" if rule else "alert rule"
        super().__init__(f"{where}, field {field_name!r}: {message}")


@dataclass(frozen=True)
class Rule:
    """A validated rule. ``spec`` holds the kind's own fields (defaults filled in);
    durations are kept as given ("5m") and read in µs through the ``*_us`` helpers."""

    name: str
    kind: str
    spec: dict = field(default_factory=dict)
    for_: str | None = None
    keep_firing_for: str | None = None
    interval: str = "1m"
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    no_data_state: str = "ok"
    error_state: str = "keep_last"
    enabled: bool = True

    @property
    def for_us(self) -> int:
        return interval_us(self.for_) if self.for_ else 0

    @property
    def keep_firing_for_us(self) -> int:
        return interval_us(self.keep_firing_for) if self.keep_firing_for else 0

    @property
    def interval_us(self) -> int:
        return interval_us(self.interval)

    def us(self, name: str) -> int:
        """µs of the duration field ``name`` of the spec."""
        return interval_us(self.spec[name])

    @property
    def metric(self) -> str | None:
        return self.spec.get("metric")

    @property
    def recipe(self) -> str | None:
        return self.spec.get("recipe")

    def to_dict(self) -> dict:
        """The rule as a document (what is stored and what files hold)."""
        out = {"name": self.name, "kind": self.kind, **self.spec}
        if self.for_:
            out["for"] = self.for_
        if self.keep_firing_for:
            out["keep_firing_for"] = self.keep_firing_for
        out.update(interval=self.interval, labels=dict(self.labels),
                   annotations=dict(self.annotations), no_data_state=self.no_data_state,
                   error_state=self.error_state, enabled=self.enabled)
        return {k: v for k, v in out.items() if v is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping) -> Rule:
        """Validate a rule document; raises :class:`RuleError` naming the first bad field."""
        return parse_rule(data)


def parse_rule(data: Mapping) -> Rule:
    """A :class:`Rule` from a document, every field checked."""
    if not isinstance(data, Mapping):
        raise RuleError(None, "rule", f"expected a mapping, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RuleError(None, "name", f"{name!r} is not a rule name (a letter or _, then up "
                        "to 99 letters, digits or _ . : -)")
    kind = data.get("kind")
    if kind not in KINDS:
        raise RuleError(name, "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    fields = KIND_FIELDS[kind]
    unknown = sorted(set(data) - set(COMMON) - set(fields))
    if unknown:
        raise RuleError(name, unknown[0], f"unknown field for a {kind} rule; known: "
                        f"{', '.join([*COMMON, *fields])}")
    spec = {}
    for key, default in fields.items():
        value = data.get(key)
        if value is None:
            if default is REQUIRED:
                raise RuleError(name, key, f"required for a {kind} rule")
            value = default
        spec[key] = value
    _check_spec(name, kind, spec)
    durations = {key: _duration(name, key, data.get(key), optional=True)
                 for key in ("for", "keep_firing_for")}
    interval = _duration(name, "interval", data.get("interval") or "1m")
    return Rule(
        name=name, kind=kind, spec=spec, for_=durations["for"],
        keep_firing_for=durations["keep_firing_for"], interval=interval,
        labels=_label_map(name, "labels", data.get("labels")),
        annotations=_annotations(name, data.get("annotations")),
        no_data_state=_choice(name, "no_data_state", data.get("no_data_state") or "ok"),
        error_state=_choice(name, "error_state", data.get("error_state") or "keep_last"),
        enabled=_bool(name, "enabled", data.get("enabled", True)))


def _check_spec(name: str, kind: str, spec: dict) -> None:
    for key in ("window", "within", "baseline", "horizon", "every", "max_duration"):
        if key in spec and spec[key] is not None:
            spec[key] = _duration(name, key, spec[key])
    for key in ("metric", "recipe", "step"):
        if spec.get(key) is not None and (not isinstance(spec[key], str) or not spec[key]
                                          or len(spec[key]) > 200):
            raise RuleError(name, key, "expected a non-empty name of at most 200 characters")
    if "match" in spec:
        spec["match"] = _label_map(name, "match", spec["match"]) or None
    if "agg" in spec and spec["agg"] not in AGGS:
        raise RuleError(name, "agg", f"{spec['agg']!r} is not one of {', '.join(AGGS)}")
    if spec.get("op") is not None or kind in ("threshold",):
        spec["op"], spec["threshold"] = _condition(name, spec.get("op"), spec.get("threshold"))
    if kind == "sql":
        query = spec["query"]
        if not isinstance(query, str) or not query.strip() or len(query) > 20_000:
            raise RuleError(name, "query", "expected one SQL statement (at most 20,000 chars)")
        if spec["op"] is None and spec["threshold"] is not None:
            raise RuleError(name, "op", "a threshold needs an op")
    if kind == "run_duration":
        fixed, factor = spec["max_duration"], spec["p95_factor"]
        if (fixed is None) == (factor is None):
            raise RuleError(name, "max_duration", "give exactly one of max_duration (e.g. "
                            "'30m') or p95_factor (e.g. 2.0)")
        if factor is not None:
            spec["p95_factor"] = _number(name, "p95_factor", factor, positive=True)
    for key in ("min_runs", "last"):
        if key in spec:
            value = spec[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
                raise RuleError(name, key, f"expected a whole number from 1 to 10000, not {value!r}")
    if kind == "step_error_rate":
        threshold = spec["threshold"]
        if not isinstance(threshold, float) or not 0 <= threshold <= 1:
            raise RuleError(name, "threshold", "an error rate is a fraction from 0 to 1")
    if kind == "anomaly" and spec["score"] is not None:
        spec["score"] = _number(name, "score", spec["score"])
        if not 0 < spec["score"] < 1:
            raise RuleError(name, "score", "an anomaly score threshold is between 0 and 1")
    if kind == "forecast":
        if spec["bound"] not in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95"):
            raise RuleError(name, "bound", "one of forecast, lo_80, hi_80, lo_95, hi_95")
        if interval_us(spec["horizon"]) < interval_us(spec["every"]):
            raise RuleError(name, "horizon", "shorter than one step (every)")
        if interval_us(spec["horizon"]) > 10_000 * interval_us(spec["every"]):
            raise RuleError(name, "horizon", "more than 10,000 steps ahead")
    if spec.get("every") and spec.get("window"):
        if interval_us(spec["window"]) < interval_us(spec["every"]):
            raise RuleError(name, "window", f"{spec['window']} is shorter than one bucket "
                            f"(every={spec['every']})")


def _condition(name: str, op, threshold) -> tuple[str, object]:
    if op not in OPS:
        raise RuleError(name, "op", f"{op!r} is not one of {' '.join(OPS)}")
    if op in ("outside", "inside"):
        if (not isinstance(threshold, (list, tuple)) or len(threshold) != 2):
            raise RuleError(name, "threshold", f"'{op}' needs a range [low, high]")
        low, high = (_number(name, "threshold", v) for v in threshold)
        if low > high:
            raise RuleError(name, "threshold", f"range [{low}, {high}] is empty")
        return op, [low, high]
    return op, _number(name, "threshold", threshold)


def compare(op: str, value: float, threshold) -> bool:
    """True when ``value`` meets the condition (NaN never does)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if op == "outside":
        return value < threshold[0] or value > threshold[1]
    if op == "inside":
        return threshold[0] <= value <= threshold[1]
    return {">": value > threshold, "<": value < threshold, ">=": value >= threshold,
            "<=": value <= threshold, "==": value == threshold,
            "!=": value != threshold}[op]


def _number(name: str, key: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RuleError(name, key, f"expected a finite number, not {value!r}")
    if positive and value <= 0:
        raise RuleError(name, key, f"must be positive, not {value!r}")
    return float(value)


def _duration(name: str, key: str, value, optional: bool = False) -> str | None:
    if value is None or value == "" or value == 0:
        if optional:
            return None
        raise RuleError(name, key, "a duration is required, e.g. '5m'")
    if not isinstance(value, str):
        raise RuleError(name, key, f"expected a duration such as '5m' or '1h', not {value!r}")
    try:
        interval_us(value)
    except ValueError as exc:
        raise RuleError(name, key, str(exc)) from None
    return value


def _label_map(name: str, key: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RuleError(name, key, "expected a mapping of label names to values")
    out = {}
    for label, text in value.items():
        if not isinstance(label, str) or not _LABEL.match(label):
            raise RuleError(name, key, f"{label!r} is not a label name")
        if not isinstance(text, (str, int, float)) or isinstance(text, bool) or \
                len(str(text)) > 1000:
            raise RuleError(name, key, f"label {label!r}: expected text up to 1000 chars")
        out[label] = str(text)
    return out


def _annotations(name: str, value) -> dict:
    out: dict[str, str] = {}
    if value is None:
        return out
    if not isinstance(value, Mapping):
        raise RuleError(name, "annotations", "expected a mapping such as {summary: ...}")
    for key, text in value.items():
        if not isinstance(key, str) or not _LABEL.match(key):
            raise RuleError(name, "annotations", f"{key!r} is not an annotation name")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise RuleError(name, f"annotations.{key}", f"expected text up to {MAX_TEXT} chars")
        for placeholder in PLACEHOLDER.findall(text):
            if not _KNOWN_PLACEHOLDER.match(placeholder):
                raise RuleError(name, f"annotations.{key}", f"unknown placeholder "
                                f"{{{placeholder}}}; use {{value}}, {{rule}}, {{run_url}}, "
                                "{run_id} or {labels.NAME}")
        out[key] = text
    return out


def _choice(name: str, key: str, value) -> str:
    if value not in STATE_CHOICES:
        raise RuleError(name, key, f"{value!r} is not one of {', '.join(STATE_CHOICES)}")
    return value


def _bool(name: str, key: str, value) -> bool:
    if not isinstance(value, bool):
        raise RuleError(name, key, f"expected true or false, not {value!r}")
    return value


def render(template: str, *, rule: str, value, labels: Mapping[str, str],
           run_id: str | None) -> str:
    """Fill an annotation template; only the documented placeholders are substituted."""
    def fill(match: re.Match) -> str:
        key = match[1]
        if key == "value":
            return "n/a" if value is None or value != value else f"{value:g}"
        if key == "rule":
            return rule
        if key == "run_id":
            return run_id or ""
        if key == "run_url":
            return f"/runs/{run_id}" if run_id else ""
        if key.startswith("labels."):
            return str(labels.get(key[7:], ""))
        return match[0]
    return PLACEHOLDER.sub(fill, template)


def load_rules(path: str | Path) -> list[Rule]:
    """Rules from a YAML or JSON file: a list of rules, or ``{rules: [...]}``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RuleError(None, "file", f"{path}: not valid JSON: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RuleError(None, "file", f"{path}: not valid YAML: {exc}") from None
    if isinstance(data, Mapping) and "rules" in data:
        data = data["rules"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise RuleError(None, "file", f"{path}: expected a list of rules")
    rules = [parse_rule(item) for item in data]
    names = [r.name for r in rules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise RuleError(duplicate, "name", f"defined twice in {path}")
    return rules
