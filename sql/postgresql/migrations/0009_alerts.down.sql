-- 0009 alerts, postgresql: drop the alert tables (rules, state, history and silences are lost).
DROP TABLE IF EXISTS notifications;
DROP TABLE IF EXISTS silences;
DROP TABLE IF EXISTS alert_events;
DROP TABLE IF EXISTS alert_instances;
DROP TABLE IF EXISTS alert_rules;
