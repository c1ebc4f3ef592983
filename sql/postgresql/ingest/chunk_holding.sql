-- Ingest: the chunk of :t whose range holds all of [:lo, :hi], if one does (NULL row set
-- otherwise), so a batch inside one chunk is copied straight into it.
SELECT chunk_name FROM wh_chunks
 WHERE hypertable = :t AND range_start <= :lo AND :hi < range_end
