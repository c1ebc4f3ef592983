-- Ingest, before points are inserted: for each series :series[i], decode the compressed
-- segments overlapping [:lo[i], :hi[i]] back into points (wh_decompress_for_write, 0010).
SELECT wh_decompress_for_write(CAST(:series AS integer[]), CAST(:lo AS timestamptz[]),
                               CAST(:hi AS timestamptz[]))
