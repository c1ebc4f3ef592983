-- 0005 down: runs go back to being keyed by (run_id, started_at) alone; merged duplicates
-- are not split again.
DROP TRIGGER IF EXISTS runs_key_update ON runs;
DROP TRIGGER IF EXISTS runs_key_delete ON runs;
DROP TRIGGER IF EXISTS runs_key_insert ON runs;
DROP FUNCTION IF EXISTS wh_run_keys_after_update();
DROP FUNCTION IF EXISTS wh_run_keys_after_delete();
DROP FUNCTION IF EXISTS wh_run_keys_after_insert();
DROP FUNCTION IF EXISTS wh_claim_run_key(uuid, timestamptz);
DROP TABLE IF EXISTS run_keys;
