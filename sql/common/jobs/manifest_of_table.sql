-- The chunk policy (warehouse/jobs/chunk_policy.py): every manifest row of :table, to judge
-- which chunks have a verified archive that still counts their rows.
-- Result: chunk_start, metric, rows, verified, dropped_at.
SELECT chunk_start, metric, rows, verified, dropped_at
  FROM archive_manifest
 WHERE table_name = :table
