-- 0005 down: runs and steps go back to being keyed with their started_at; merged
-- duplicates are not split again.
DROP TRIGGER IF EXISTS step_runs_key_update ON step_runs;
DROP TRIGGER IF EXISTS step_runs_key_delete ON step_runs;
DROP TRIGGER IF EXISTS step_runs_key_insert ON step_runs;
DROP FUNCTION IF EXISTS wh_step_keys_after_update();
DROP FUNCTION IF EXISTS wh_step_keys_after_delete();
DROP FUNCTION IF EXISTS wh_step_keys_after_insert();
DROP FUNCTION IF EXISTS wh_claim_step_key(uuid, text, timestamptz);
DROP TABLE IF EXISTS step_keys;
DROP TRIGGER IF EXISTS runs_key_update ON runs;
DROP TRIGGER IF EXISTS runs_key_delete ON runs;
DROP TRIGGER IF EXISTS runs_key_insert ON runs;
DROP FUNCTION IF EXISTS wh_run_keys_after_update();
DROP FUNCTION IF EXISTS wh_run_keys_after_delete();
DROP FUNCTION IF EXISTS wh_run_keys_after_insert();
DROP FUNCTION IF EXISTS wh_claim_run_key(uuid, timestamptz);
DROP TABLE IF EXISTS run_keys;
