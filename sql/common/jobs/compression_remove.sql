-- Remove the compression policy (compressed chunks stay compressed).
DELETE FROM compression_policies WHERE table_name = 'points'
