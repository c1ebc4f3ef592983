-- Retention policies. Columns: table_name, metric, keep_us, archive, updated_at.
SELECT table_name, metric, keep_us, archive, updated_at
  FROM retention_policies ORDER BY table_name, metric
