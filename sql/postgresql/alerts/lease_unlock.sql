-- Give up the evaluator lease taken by alerts/lease_lock.sql. Result: whether it was held.
SELECT pg_advisory_unlock(hashtext('wh_alerts:evaluator'))
