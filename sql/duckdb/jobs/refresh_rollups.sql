-- Job refresh_rollups (DuckDB script): incremental refresh of points_1m (from points),
-- points_1h (from points_1m) and points_1d (from points_1h). The same algorithm as
-- wh_refresh_rollups in sql/postgresql/migrations/0003_jobs.up.sql:
--   1. late points: recompute the buckets that rows of rollup_invalidations touch, in every
--      tier, then delete those invalidations;
--   2. each tier advances its watermark over complete buckets (ending at or before now).
-- Parameters, set by the runner as variables: now (TIMESTAMPTZ); max_us is ignored — one
-- transaction does it all (one writer process; the job holds this process's ingest lock).
-- Result: one row (rows_written, caught_up).
SET VARIABLE w1 = (SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1m');
SET VARIABLE w2 = (SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1h');
SET VARIABLE w3 = (SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1d');
SET VARIABLE inv = (SELECT coalesce(max(inv_id), 0) FROM rollup_invalidations);
CREATE OR REPLACE TEMP TABLE _wh_rows (n BIGINT);

-- 1. Late points, tier by tier (each tier recomputed from the one below, already fixed).
DELETE FROM points_1m r USING wh_invalidated_ranges(60000000, getvariable('w1'), getvariable('inv')) i
 WHERE r.series_id = i.series_id AND r.bucket >= i.lo AND r.bucket < i.hi;
CREATE OR REPLACE TEMP TABLE _wh_new AS
SELECT p.series_id, time_bucket(INTERVAL 1 minute, p.ts, 'UTC') AS bucket, count(*) AS count,
       sum(p.value) AS sum, min(p.value) AS min, max(p.value) AS max,
       sum(p.value * p.value) AS sum_sq, min(p.ts) AS first_ts, arg_min(p.value, p.ts) AS first_value,
       max(p.ts) AS last_ts, arg_max(p.value, p.ts) AS last_value
  FROM wh_invalidated_ranges(60000000, getvariable('w1'), getvariable('inv')) i
  JOIN points p ON p.series_id = i.series_id AND p.ts >= i.lo AND p.ts < i.hi
 GROUP BY ALL;
INSERT INTO points_1m SELECT * FROM _wh_new;
INSERT INTO _wh_rows SELECT count(*) FROM _wh_new;

DELETE FROM points_1h r USING wh_invalidated_ranges(3600000000, getvariable('w2'), getvariable('inv')) i
 WHERE r.series_id = i.series_id AND r.bucket >= i.lo AND r.bucket < i.hi;
CREATE OR REPLACE TEMP TABLE _wh_new AS
SELECT m.series_id, time_bucket(INTERVAL 1 hour, m.bucket, 'UTC') AS bucket, sum(m.count) AS count,
       sum(m.sum) AS sum, min(m.min) AS min, max(m.max) AS max, sum(m.sum_sq) AS sum_sq,
       min(m.first_ts) AS first_ts, arg_min(m.first_value, m.first_ts) AS first_value,
       max(m.last_ts) AS last_ts, arg_max(m.last_value, m.last_ts) AS last_value
  FROM wh_invalidated_ranges(3600000000, getvariable('w2'), getvariable('inv')) i
  JOIN points_1m m ON m.series_id = i.series_id AND m.bucket >= i.lo AND m.bucket < i.hi
 GROUP BY ALL;
INSERT INTO points_1h SELECT * FROM _wh_new;
INSERT INTO _wh_rows SELECT count(*) FROM _wh_new;

DELETE FROM points_1d r USING wh_invalidated_ranges(86400000000, getvariable('w3'), getvariable('inv')) i
 WHERE r.series_id = i.series_id AND r.bucket >= i.lo AND r.bucket < i.hi;
CREATE OR REPLACE TEMP TABLE _wh_new AS
SELECT h.series_id, time_bucket(INTERVAL 1 day, h.bucket, 'UTC') AS bucket, sum(h.count) AS count,
       sum(h.sum) AS sum, min(h.min) AS min, max(h.max) AS max, sum(h.sum_sq) AS sum_sq,
       min(h.first_ts) AS first_ts, arg_min(h.first_value, h.first_ts) AS first_value,
       max(h.last_ts) AS last_ts, arg_max(h.last_value, h.last_ts) AS last_value
  FROM wh_invalidated_ranges(86400000000, getvariable('w3'), getvariable('inv')) i
  JOIN points_1h h ON h.series_id = i.series_id AND h.bucket >= i.lo AND h.bucket < i.hi
 GROUP BY ALL;
INSERT INTO points_1d SELECT * FROM _wh_new;
INSERT INTO _wh_rows SELECT count(*) FROM _wh_new;

DELETE FROM rollup_invalidations WHERE inv_id <= getvariable('inv');

-- 2. points_1m advances over complete minutes (from the oldest point the first time).
SET VARIABLE t1 = greatest(getvariable('w1'), time_bucket(INTERVAL 1 minute, getvariable('now'), 'UTC'));
SET VARIABLE f1 = coalesce(getvariable('w1'),
                           (SELECT time_bucket(INTERVAL 1 minute, min(ts), 'UTC') FROM points));
CREATE OR REPLACE TEMP TABLE _wh_new AS
SELECT series_id, time_bucket(INTERVAL 1 minute, ts, 'UTC') AS bucket, count(*) AS count,
       sum(value) AS sum, min(value) AS min, max(value) AS max, sum(value * value) AS sum_sq,
       min(ts) AS first_ts, arg_min(value, ts) AS first_value,
       max(ts) AS last_ts, arg_max(value, ts) AS last_value
  FROM points WHERE ts >= getvariable('f1') AND ts < getvariable('t1')
 GROUP BY ALL ORDER BY bucket, series_id;
INSERT INTO points_1m SELECT * FROM _wh_new;
INSERT INTO _wh_rows SELECT count(*) FROM _wh_new;
UPDATE rollup_watermarks SET watermark = getvariable('t1')
 WHERE rollup = 'points_1m' AND getvariable('f1') < getvariable('t1');
SET VARIABLE w1 = (SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1m');

-- 3. points_1h and points_1d follow over the hours and days points_1m completed.
SET VARIABLE t2 = time_bucket(INTERVAL 1 hour, getvariable('w1'), 'UTC');
SET VARIABLE f2 = coalesce(getvariable('w2'),
                           (SELECT time_bucket(INTERVAL 1 hour, min(bucket), 'UTC') FROM points_1m),
                           getvariable('t2'));
CREATE OR REPLACE TEMP TABLE _wh_new AS
SELECT series_id, time_bucket(INTERVAL 1 hour, bucket, 'UTC') AS bucket, sum(count) AS count,
       sum(sum) AS sum, min(min) AS min, max(max) AS max, sum(sum_sq) AS sum_sq,
       min(first_ts) AS first_ts, arg_min(first_value, first_ts) AS first_value,
       max(last_ts) AS last_ts, arg_max(last_value, last_ts) AS last_value
  FROM points_1m WHERE bucket >= getvariable('f2') AND bucket < getvariable('t2')
 GROUP BY ALL ORDER BY bucket, series_id;
INSERT INTO points_1h SELECT * FROM _wh_new;
INSERT INTO _wh_rows SELECT count(*) FROM _wh_new;
UPDATE rollup_watermarks SET watermark = getvariable('t2')
 WHERE rollup = 'points_1h' AND getvariable('t2') IS NOT NULL
   AND (watermark IS NULL OR watermark < getvariable('t2'));
SET VARIABLE w2 = (SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1h');

SET VARIABLE t3 = time_bucket(INTERVAL 1 day, getvariable('w2'), 'UTC');
SET VARIABLE f3 = coalesce(getvariable('w3'),
                           (SELECT time_bucket(INTERVAL 1 day, min(bucket), 'UTC') FROM points_1h),
                           getvariable('t3'));
CREATE OR REPLACE TEMP TABLE _wh_new AS
SELECT series_id, time_bucket(INTERVAL 1 day, bucket, 'UTC') AS bucket, sum(count) AS count,
       sum(sum) AS sum, min(min) AS min, max(max) AS max, sum(sum_sq) AS sum_sq,
       min(first_ts) AS first_ts, arg_min(first_value, first_ts) AS first_value,
       max(last_ts) AS last_ts, arg_max(last_value, last_ts) AS last_value
  FROM points_1h WHERE bucket >= getvariable('f3') AND bucket < getvariable('t3')
 GROUP BY ALL ORDER BY bucket, series_id;
INSERT INTO points_1d SELECT * FROM _wh_new;
INSERT INTO _wh_rows SELECT count(*) FROM _wh_new;
UPDATE rollup_watermarks SET watermark = getvariable('t3')
 WHERE rollup = 'points_1d' AND getvariable('t3') IS NOT NULL
   AND (watermark IS NULL OR watermark < getvariable('t3'));

DROP TABLE _wh_new;
SELECT coalesce(sum(n), 0) AS rows_written, true AS caught_up FROM _wh_rows;
