-- Ingest: whether rows of the range [:lo, :hi) of points are stored outside every chunk, in
-- the default partition (rows other SQL clients inserted there). Then the new chunk is made
-- by wh_ensure_chunk instead (which moves them in) and the batch de-duplicated against them.
SELECT EXISTS (SELECT 1 FROM points_default WHERE ts >= :lo AND ts < :hi)
