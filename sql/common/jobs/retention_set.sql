-- Create or change the retention policy of a table (:metric '*') or of one metric.
INSERT INTO retention_policies (table_name, metric, keep_us, archive, updated_at)
VALUES (:table, :metric, :keep_us, :archive, :now)
ON CONFLICT (table_name, metric) DO UPDATE SET
    keep_us = excluded.keep_us, archive = excluded.archive, updated_at = excluded.updated_at
