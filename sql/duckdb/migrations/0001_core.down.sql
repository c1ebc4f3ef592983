-- 0001 core schema, DuckDB: drop everything 0001 created.
DROP TABLE IF EXISTS step_runs;
DROP TABLE IF EXISTS runs;
DROP TABLE IF EXISTS points;
DROP TABLE IF EXISTS series;
DROP TABLE IF EXISTS recipes;
DROP TABLE IF EXISTS hypertables;
DROP SEQUENCE IF EXISTS series_id_seq;
