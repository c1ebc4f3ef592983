-- Ingest: the newest stored point (µs since the epoch) of each series in :ids, from
-- series_last, to judge whether a batch can meet stored keys. Binds :ids (integer list).
SELECT series_id, wh_epoch_us(ts) FROM series_last WHERE series_id = ANY(CAST(:ids AS integer[]))
