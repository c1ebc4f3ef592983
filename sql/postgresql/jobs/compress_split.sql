-- Job compress: the series id below which a share :share of all series lies; the job's own
-- session encodes those before its DELETE, the encoder's session the others. NULL without
-- series. The series table stands in for the chunk's (no scan of the chunk for a cut point).
SELECT percentile_disc(CAST(:share AS float8)) WITHIN GROUP (ORDER BY series_id) FROM series
