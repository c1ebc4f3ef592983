-- Store alert instances' state (the caller deletes their old rows in the same
-- transaction). Params: one list per alert_instances column, all the same length; the
-- lists are zipped by unnest in the select list (both engines), one statement for any
-- number of instances.
INSERT INTO alert_instances (fingerprint, rule_name, labels, state, value, annotations,
    active_at, fired_at, resolved_at, last_active_at, last_eval_at, notified_state,
    notified_at)
SELECT unnest(CAST(:fingerprint AS VARCHAR[])), unnest(CAST(:rule_name AS VARCHAR[])),
       unnest(CAST(:labels AS VARCHAR[])), unnest(CAST(:state AS VARCHAR[])),
       unnest(CAST(:value AS DOUBLE PRECISION[])), unnest(CAST(:annotations AS VARCHAR[])),
       unnest(CAST(:active_at AS TIMESTAMPTZ[])), unnest(CAST(:fired_at AS TIMESTAMPTZ[])),
       unnest(CAST(:resolved_at AS TIMESTAMPTZ[])),
       unnest(CAST(:last_active_at AS TIMESTAMPTZ[])),
       unnest(CAST(:last_eval_at AS TIMESTAMPTZ[])),
       unnest(CAST(:notified_state AS VARCHAR[])), unnest(CAST(:notified_at AS TIMESTAMPTZ[]))
