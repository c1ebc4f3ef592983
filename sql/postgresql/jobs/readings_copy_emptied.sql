-- Job compress, PostgreSQL: as readings_copy_chunk, for a range whose chunk the job has just
-- emptied in this transaction (wh_compress_chunk deletes all its rows): the copy reads its
-- segments alone, not the deleted rows still in the chunk (p_hot_rows, migration 0018).
-- Result: one row, the instants copied.
SELECT wh_copy_readings(CAST(:start AS timestamptz), CAST(:end AS timestamptz),
                        CAST(:now AS timestamptz), CAST(:max_columns AS integer),
                        p_hot_rows => false)
