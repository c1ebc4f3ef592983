-- drop_chunks: a unit whose verified manifest row counted exactly its rows left the hot
-- table; from now on its file stands for them (queries and restore read it).
UPDATE archive_manifest SET dropped_at = :now, hold_until = NULL
 WHERE table_name = :table AND chunk_start = :start AND metric = :metric
   AND verified AND rows = :rows AND dropped_at IS NULL
