-- Record state changes of alert instances. Params: one list per alert_events column, all
-- the same length (zipped by unnest in the select list, as instances_insert).
INSERT INTO alert_events (event_id, changed_at, rule_name, fingerprint, labels, from_state,
    to_state, value, reason)
SELECT unnest(CAST(:event_id AS VARCHAR[])), unnest(CAST(:changed_at AS TIMESTAMPTZ[])),
       unnest(CAST(:rule_name AS VARCHAR[])), unnest(CAST(:fingerprint AS VARCHAR[])),
       unnest(CAST(:labels AS VARCHAR[])), unnest(CAST(:from_state AS VARCHAR[])),
       unnest(CAST(:to_state AS VARCHAR[])), unnest(CAST(:value AS DOUBLE PRECISION[])),
       unnest(CAST(:reason AS VARCHAR[]))
