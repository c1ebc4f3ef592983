-- Job compress, PostgreSQL: the pivoted copy of one chunk range [:start, :end), right after
-- it was encoded, in the same transaction (wh_copy_readings, migration 0017; the column
-- limit is warehouse/jobs/readings.py's). Result: one row, the instants copied.
SELECT wh_copy_readings(CAST(:start AS timestamptz), CAST(:end AS timestamptz),
                        CAST(:now AS timestamptz), CAST(:max_columns AS integer))
