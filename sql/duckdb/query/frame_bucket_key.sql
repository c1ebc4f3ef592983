-- wh.frame: the bucket of {column} as a small integer, counted from {origin} (µs since the
-- Unix epoch) in steps of {every} µs. Used only when every row is at or after {origin}:
-- DuckDB's // truncates towards zero, which is the floor there. Integer arithmetic on
-- epoch_us, as the TSBS raw baseline does; the general floor (Backend.bucket_start) costs
-- two modulos more per row (double-groupby-all: ~12% of the statement).
(epoch_us({column}) - {origin}) // {every}
