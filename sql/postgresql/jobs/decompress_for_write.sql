-- Ingest, before points of :series in [:lo, :hi] are inserted: decode the compressed
-- segments they overlap back into points (wh_decompress_for_write, migration 0010).
SELECT wh_decompress_for_write(CAST(:series AS integer[]), CAST(:lo AS timestamptz),
                               CAST(:hi AS timestamptz))
