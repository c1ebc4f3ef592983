-- Job retention, one unit (DuckDB script): a whole chunk of a table (metric '*': its time
-- range is deleted; the job CHECKPOINTs afterwards to give the space back) or one metric's
-- rows of a points chunk range [start, end).
-- Variables set by the runner: table, start, end, metric, archive (the policy archives), now.
-- Result: one row (removed, refused): rows removed, or 0 and why it refused.
-- The invariant is part of each DELETE: under an archive policy, rows go only if the
-- unit's manifest row is verified, not yet dropped, and counts exactly the rows there now.
SET VARIABLE unit_rows = CASE getvariable('table')
    WHEN 'points' THEN (
        SELECT count(*) FROM points
         WHERE ts >= getvariable('start') AND ts < getvariable('end')
           AND (getvariable('metric') = '*' OR series_id IN (
                SELECT series_id FROM series WHERE metric = getvariable('metric'))))
    WHEN 'runs' THEN (
        SELECT count(*) FROM runs
         WHERE started_at >= getvariable('start') AND started_at < getvariable('end'))
    WHEN 'step_runs' THEN (
        SELECT count(*) FROM step_runs
         WHERE started_at >= getvariable('start') AND started_at < getvariable('end'))
    END;
SET VARIABLE refused = (
    SELECT CASE
        WHEN getvariable('unit_rows') = 0 THEN NULL  -- nothing to lose
        WHEN getvariable('archive') AND m.table_name IS NULL THEN 'not archived yet'
        WHEN m.hold_until > getvariable('now')
            THEN 'restored; held until ' || CAST(m.hold_until AS VARCHAR)
        WHEN getvariable('archive') AND NOT m.verified THEN 'archive not verified'
        WHEN getvariable('archive')
             AND (m.rows <> getvariable('unit_rows') OR m.dropped_at IS NOT NULL)
            THEN 'manifest has ' || CAST(m.rows AS VARCHAR) || ' rows, the chunk '
                 || CAST(getvariable('unit_rows') AS VARCHAR) || ': archive again first'
        WHEN getvariable('table') = 'points' AND getvariable('unit_rows') > 0
             AND (w.watermark IS NULL OR w.watermark < getvariable('end'))
            THEN 'not rolled up yet: run refresh_rollups'
        WHEN getvariable('table') = 'points' AND getvariable('unit_rows') > 0 AND EXISTS (
             SELECT 1 FROM rollup_invalidations i
              WHERE i.range_start < getvariable('end') AND i.range_end > getvariable('start')
                AND (getvariable('metric') = '*' OR i.series_id IN (
                     SELECT series_id FROM series WHERE metric = getvariable('metric'))))
            THEN 'late points not rolled up yet'
        END
      FROM (SELECT 1) AS one
      LEFT JOIN archive_manifest m
        ON m.table_name = getvariable('table') AND m.chunk_start = getvariable('start')
       AND m.metric = getvariable('metric')
      LEFT JOIN rollup_watermarks w ON w.rollup = 'points_1m');

DELETE FROM points
 WHERE getvariable('table') = 'points' AND getvariable('refused') IS NULL
   AND ts >= getvariable('start') AND ts < getvariable('end')
   AND (getvariable('metric') = '*' OR series_id IN (
        SELECT series_id FROM series WHERE metric = getvariable('metric')))
   AND (NOT getvariable('archive') OR EXISTS (
        SELECT 1 FROM archive_manifest m
         WHERE m.table_name = 'points' AND m.chunk_start = getvariable('start')
           AND m.metric = getvariable('metric') AND m.verified AND m.dropped_at IS NULL
           AND m.rows = (SELECT count(*) FROM points q
                          WHERE q.ts >= getvariable('start') AND q.ts < getvariable('end')
                            AND (getvariable('metric') = '*' OR q.series_id IN (
                                 SELECT series_id FROM series
                                  WHERE metric = getvariable('metric'))))));
-- The pivoted copy of the range (migration 0016) goes with its points: the next compress
-- run copies what is left. Whole listed copies go, also the parts of one made under another
-- chunk interval that reach past the range: rows left without their listing would be
-- adopted by the next copy listed there.
DELETE FROM readings
 WHERE getvariable('table') = 'points' AND getvariable('refused') IS NULL
   AND ts >= least(getvariable('start'), coalesce((
        SELECT min(chunk_start) FROM reading_chunks
         WHERE chunk_end > getvariable('start') AND chunk_start < getvariable('end')),
        getvariable('start')))
   AND ts < greatest(getvariable('end'), coalesce((
        SELECT max(chunk_end) FROM reading_chunks
         WHERE chunk_end > getvariable('start') AND chunk_start < getvariable('end')),
        getvariable('end')));
DELETE FROM reading_chunks
 WHERE getvariable('table') = 'points' AND getvariable('refused') IS NULL
   AND chunk_end > getvariable('start') AND chunk_start < getvariable('end');
DELETE FROM runs
 WHERE getvariable('table') = 'runs' AND getvariable('refused') IS NULL
   AND started_at >= getvariable('start') AND started_at < getvariable('end')
   AND (NOT getvariable('archive') OR EXISTS (
        SELECT 1 FROM archive_manifest m
         WHERE m.table_name = 'runs' AND m.chunk_start = getvariable('start')
           AND m.metric = '*' AND m.verified AND m.dropped_at IS NULL
           AND m.rows = (SELECT count(*) FROM runs q WHERE q.started_at >= getvariable('start')
                                                       AND q.started_at < getvariable('end'))));
DELETE FROM step_runs
 WHERE getvariable('table') = 'step_runs' AND getvariable('refused') IS NULL
   AND started_at >= getvariable('start') AND started_at < getvariable('end')
   AND (NOT getvariable('archive') OR EXISTS (
        SELECT 1 FROM archive_manifest m
         WHERE m.table_name = 'step_runs' AND m.chunk_start = getvariable('start')
           AND m.metric = '*' AND m.verified AND m.dropped_at IS NULL
           AND m.rows = (SELECT count(*) FROM step_runs q
                          WHERE q.started_at >= getvariable('start')
                            AND q.started_at < getvariable('end'))));

-- A manifest row that still describes the rows now stands for them (queries and restore
-- read it from here on).
UPDATE archive_manifest SET dropped_at = getvariable('now'), hold_until = NULL
 WHERE getvariable('refused') IS NULL AND table_name = getvariable('table')
   AND chunk_start = getvariable('start') AND metric = getvariable('metric')
   AND verified AND rows = getvariable('unit_rows') AND dropped_at IS NULL;

SELECT CASE WHEN getvariable('refused') IS NULL THEN getvariable('unit_rows') ELSE 0 END
           AS removed,
       getvariable('refused') AS refused;
