-- A wide write copied the whole of the chunk range [:start, :end), which held no point
-- before it: list the copy, with a new copy_no (warehouse/backends/duckdb_readings.py).
INSERT INTO reading_chunks (chunk_start, chunk_end, copied, copied_at, copy_no)
VALUES (:start, :end, true, now(), nextval('reading_copy_seq'))
