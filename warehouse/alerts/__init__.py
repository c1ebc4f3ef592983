"""Alerts: rules over metrics, runs and analytics, evaluated on every committed write and on
schedule, with Prometheus/Alertmanager semantics (docs/alerts.md).

>>> from warehouse.alerts import AlertManager, NotifyConfig
>>> alerts = AlertManager(wh, notify=NotifyConfig.from_dict(config))
>>> alerts.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": "etl"})
>>> alerts.start()          # follow wh.changes and the rules' intervals in a thread
"""

from __future__ import annotations

from warehouse.alerts.channels import (
    EmailChannel,
    FileChannel,
    SlackChannel,
    WebhookChannel,
    verify_signature,
)
from warehouse.alerts.evaluator import AlertManager
from warehouse.alerts.notify import Dispatcher, InhibitRule, Matcher, Notifier, NotifyConfig, Route
from warehouse.alerts.rules import Rule, RuleError, load_rules, parse_rule

__all__ = ["AlertManager", "Dispatcher", "EmailChannel", "FileChannel", "InhibitRule",
           "Matcher", "Notifier", "NotifyConfig", "Route", "Rule", "RuleError",
           "SlackChannel", "WebhookChannel", "load_rules", "parse_rule", "verify_signature"]
