-- Job compress: chunks of points ending at or before :older_than that hold hot rows (never
-- compressed, or written into since), oldest first. EXISTS reads one row per chunk.
-- Columns: chunk_name, range_start, range_end.
SELECT c.chunk_name, c.range_start, c.range_end
  FROM wh_chunks c
 WHERE c.hypertable = 'points' AND c.range_end <= CAST(:older_than AS timestamptz)
   AND EXISTS (SELECT 1 FROM points p
                WHERE p.ts >= c.range_start AND p.ts < c.range_end)
 ORDER BY c.range_start
