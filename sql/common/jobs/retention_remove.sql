-- Remove a retention policy. Result: rows removed (0 or 1) as rowcount.
DELETE FROM retention_policies WHERE table_name = :table AND metric = :metric
