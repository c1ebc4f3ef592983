-- Job archive: the file of a unit was read back and matches (rows, sha256): mark it
-- verified — only if the row still describes that very file.
UPDATE archive_manifest SET verified = true, verified_at = :now
 WHERE table_name = :table AND chunk_start = :start AND metric = :metric
   AND sha256 = :sha256 AND rows = :rows AND dropped_at IS NULL
