-- 0009 alerts, duckdb: alert rules, the state of each alert instance (one per rule and label
-- set, keyed by its fingerprint), the history of state changes, silences and notification
-- delivery attempts (issue 14; docs/alerts.md). JSON documents (rule specs, labels,
-- matchers) are stored as JSON text so both engines hold the same values. Ids are made by
-- the application (DuckDB has no SERIAL).

CREATE TABLE alert_rules (
    name       VARCHAR PRIMARY KEY,
    kind       VARCHAR NOT NULL,
    spec       VARCHAR NOT NULL,               -- the whole rule as JSON (warehouse.alerts.rules)
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- pending -> firing -> resolved; an inactive instance has no row. notified_* remember what
-- was last delivered for the instance, so a restart or a replay never notifies twice.
CREATE TABLE alert_instances (
    fingerprint    VARCHAR PRIMARY KEY,
    rule_name      VARCHAR NOT NULL,
    labels         VARCHAR NOT NULL,
    state          VARCHAR NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    value          DOUBLE,
    annotations    VARCHAR,
    active_at      TIMESTAMPTZ,
    fired_at       TIMESTAMPTZ,
    resolved_at    TIMESTAMPTZ,
    last_active_at TIMESTAMPTZ,
    last_eval_at   TIMESTAMPTZ NOT NULL,
    notified_state VARCHAR,
    notified_at    TIMESTAMPTZ
);
CREATE INDEX alert_instances_rule ON alert_instances (rule_name);

-- One row per state change: analysts query it like a view.
CREATE TABLE alert_events (
    event_id    VARCHAR PRIMARY KEY,
    changed_at  TIMESTAMPTZ NOT NULL,
    rule_name   VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    labels      VARCHAR NOT NULL,
    from_state  VARCHAR NOT NULL,
    to_state    VARCHAR NOT NULL,
    value       DOUBLE,
    reason      VARCHAR
);
CREATE INDEX alert_events_at ON alert_events (changed_at);
CREATE INDEX alert_events_rule ON alert_events (rule_name, changed_at);

CREATE TABLE silences (
    silence_id VARCHAR PRIMARY KEY,
    matchers   VARCHAR NOT NULL,               -- JSON list of [label, op, value]
    starts_at  TIMESTAMPTZ NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    author     VARCHAR NOT NULL,
    comment    VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row per delivery attempt of a notification to one channel of a receiver.
CREATE TABLE notifications (
    notification_id VARCHAR PRIMARY KEY,
    attempted_at    TIMESTAMPTZ NOT NULL,
    receiver        VARCHAR NOT NULL,
    channel         VARCHAR NOT NULL,
    group_key       VARCHAR NOT NULL,
    fingerprints    VARCHAR NOT NULL,          -- JSON list
    status          VARCHAR NOT NULL CHECK (status IN ('sent', 'failed', 'retrying')),
    attempt         INTEGER NOT NULL,
    error           VARCHAR
);
CREATE INDEX notifications_at ON notifications (attempted_at);
