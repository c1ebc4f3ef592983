-- What a points query must know before its own SQL runs, in one round trip
-- (warehouse/query/catalog.py): the newest series id (series are only ever added, so the
-- cached series of a metric are current while it is unchanged), how many archive units of
-- points have left the hot table, each rollup's watermark and the pending invalidations.
-- Needs migration 0003 (jobs); state_series.sql is the form for older schemas.
-- Result: one row: series_max, archived, wm_1m, wm_1h, wm_1d, pending.
SELECT (SELECT max(series_id) FROM series) AS series_max,
       (SELECT count(*) FROM archive_manifest
         WHERE table_name = 'points' AND dropped_at IS NOT NULL) AS archived,
       (SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1m') AS wm_1m,
       (SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1h') AS wm_1h,
       (SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1d') AS wm_1d,
       (SELECT count(*) FROM rollup_invalidations) AS pending
