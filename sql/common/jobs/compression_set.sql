-- Create or change the compression policy: chunks of points ending more than :after_us ago
-- are compressed by the compress job.
INSERT INTO compression_policies (table_name, compress_after_us, updated_at)
VALUES ('points', :after_us, :now)
ON CONFLICT (table_name) DO UPDATE SET
    compress_after_us = excluded.compress_after_us, updated_at = excluded.updated_at
