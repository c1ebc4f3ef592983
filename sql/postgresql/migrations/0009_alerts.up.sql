-- 0009 alerts, postgresql: alert rules, the state of each alert instance (one per rule and label
-- set, keyed by its fingerprint), the history of state changes, silences and notification
-- delivery attempts (issue 14; docs/alerts.md). JSON documents (rule specs, labels,
-- matchers) are stored as JSON text so both engines hold the same values. Ids are made by
-- the application (DuckDB has no SERIAL).

CREATE TABLE alert_rules (
    name       text PRIMARY KEY,
    kind       text NOT NULL,
    spec       text NOT NULL,               -- the whole rule as JSON (warehouse.alerts.rules)
    enabled    boolean NOT NULL DEFAULT TRUE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- pending -> firing -> resolved; an inactive instance has no row. notified_* remember what
-- was last delivered for the instance, so a restart or a replay never notifies twice.
CREATE TABLE alert_instances (
    fingerprint    text PRIMARY KEY,
    rule_name      text NOT NULL,
    labels         text NOT NULL,
    state          text NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    value          double precision,
    annotations    text,
    active_at      timestamptz,
    fired_at       timestamptz,
    resolved_at    timestamptz,
    last_active_at timestamptz,
    last_eval_at   timestamptz NOT NULL,
    notified_state text,
    notified_at    timestamptz
);
CREATE INDEX alert_instances_rule ON alert_instances (rule_name);

-- One row per state change: analysts query it like a view.
CREATE TABLE alert_events (
    event_id    text PRIMARY KEY,
    changed_at  timestamptz NOT NULL,
    rule_name   text NOT NULL,
    fingerprint text NOT NULL,
    labels      text NOT NULL,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    value       double precision,
    reason      text
);
CREATE INDEX alert_events_at ON alert_events (changed_at);
CREATE INDEX alert_events_rule ON alert_events (rule_name, changed_at);

CREATE TABLE silences (
    silence_id text PRIMARY KEY,
    matchers   text NOT NULL,               -- JSON list of [label, op, value]
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    author     text NOT NULL,
    comment    text NOT NULL,
    created_at timestamptz NOT NULL
);

-- One row per delivery attempt of a notification to one channel of a receiver.
CREATE TABLE notifications (
    notification_id text PRIMARY KEY,
    attempted_at    timestamptz NOT NULL,
    receiver        text NOT NULL,
    channel         text NOT NULL,
    group_key       text NOT NULL,
    fingerprints    text NOT NULL,          -- JSON list
    status          text NOT NULL CHECK (status IN ('sent', 'failed', 'retrying')),
    attempt         integer NOT NULL,
    error           text
);
CREATE INDEX notifications_at ON notifications (attempted_at);
