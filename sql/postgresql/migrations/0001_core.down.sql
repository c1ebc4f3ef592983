-- 0001 core schema, PostgreSQL: drop everything 0001 created (chunks go with their parents).
DROP FUNCTION IF EXISTS wh_drop_chunks(text, timestamptz);
DROP FUNCTION IF EXISTS wh_show_chunks(text);
DROP FUNCTION IF EXISTS wh_move_default_rows(text);
DROP FUNCTION IF EXISTS wh_ensure_chunk(text, timestamptz);
DROP FUNCTION IF EXISTS wh_epoch_us(timestamptz);
DROP TABLE IF EXISTS step_runs;
DROP TABLE IF EXISTS runs;
DROP TABLE IF EXISTS points;
DROP TABLE IF EXISTS series;
DROP TABLE IF EXISTS recipes;
DROP TABLE IF EXISTS wh_chunks;
DROP TABLE IF EXISTS hypertables;
