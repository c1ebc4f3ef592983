-- Job compress: whether the schema has migration 0018's wh_reclaim_chunk and wh_copy_readings'
-- p_hot_rows (a database downgraded below it compresses as before).
SELECT to_regprocedure('wh_reclaim_chunk(text)') IS NOT NULL
