-- Archived units of points whose rows have left the hot table (dropped by retention) and
-- that may hold rows of :metric (NULL: any) in [:start, :end) (NULL = unbounded).
-- Queries read these files; units not dropped are still hot and read from points.
-- Result: root, path, chunk_start, chunk_end, metric, rows, sha256.
SELECT root, path, chunk_start, chunk_end, metric, rows, sha256
  FROM archive_manifest
 WHERE table_name = 'points' AND dropped_at IS NOT NULL
   AND (CAST(:metric AS VARCHAR) IS NULL OR metric = '*'
        OR metric = CAST(:metric AS VARCHAR))
   AND (CAST(:start AS TIMESTAMP WITH TIME ZONE) IS NULL
        OR max_ts >= CAST(:start AS TIMESTAMP WITH TIME ZONE))
   AND (CAST(:end AS TIMESTAMP WITH TIME ZONE) IS NULL
        OR min_ts < CAST(:end AS TIMESTAMP WITH TIME ZONE))
 ORDER BY chunk_start, metric
