-- Job compress, PostgreSQL: chunks of points ending at or before :older_than that hold
-- compressed segments but are not listed in reading_chunks (compressed before migration
-- 0017, or their copy went with a change), oldest first: the job copies them.
-- Columns: chunk_name, range_start, range_end.
SELECT c.chunk_name, c.range_start, c.range_end
  FROM wh_chunks c
 WHERE c.hypertable = 'points' AND c.range_end <= CAST(:older_than AS timestamptz)
   AND NOT EXISTS (SELECT 1 FROM reading_chunks r WHERE r.chunk_start = c.range_start)
   AND EXISTS (SELECT 1 FROM points_compressed s
                WHERE s.ts_min >= c.range_start AND s.ts_min < c.range_end)
 ORDER BY c.range_start
