-- Ingest: whether compressed segments of points overlap [:lo, :hi) although no chunk holds
-- that range (they are normally dropped with their chunk). Then the chunk is made by
-- wh_ensure_chunk and the segments decoded into it before the write, as for any chunk.
SELECT EXISTS (SELECT 1 FROM points_compressed WHERE ts_min < :hi AND ts_max >= :lo)
