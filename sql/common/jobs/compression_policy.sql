-- The compression policy's age in µs (no row: no policy).
SELECT compress_after_us FROM compression_policies WHERE table_name = 'points'
