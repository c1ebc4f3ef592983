-- 0017 down: the pivoted copy goes (frames read segments again), and 0012's
-- wh_decompress_for_write, which forgets no copy.
DROP FUNCTION wh_copy_readings(timestamptz, timestamptz, timestamptz, integer, integer);
DROP FUNCTION wh_segment_values(double precision[], real[], integer[], smallint);
DROP TRIGGER points_compressed_forget_readings ON points_compressed;
DROP FUNCTION wh_segments_deleted();
CREATE OR REPLACE FUNCTION wh_decompress_for_write(p_series integer[], p_lo timestamptz[],
                                                   p_hi timestamptz[])
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c_origin constant timestamptz := '2000-01-03 00:00:00+00';
    v_rows bigint;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('wh_compress:' || c.chunk_name))
       FROM (SELECT chunk_name FROM wh_chunks
              WHERE hypertable = 'points'
                AND range_end > date_bin('1 minute', (SELECT min(x) FROM unnest(p_lo) x),
                                         c_origin)
                AND range_start <= (SELECT max(x) FROM unnest(p_hi) x)
              ORDER BY range_start) c;
    WITH wanted AS (
        SELECT r.series_id, date_bin('1 minute', r.lo, c_origin) AS lo,
               date_bin('1 minute', r.hi, c_origin) + interval '1 minute' AS hi
          FROM unnest(p_series, p_lo, p_hi) AS r(series_id, lo, hi)),
    seg AS (
        DELETE FROM points_compressed s USING wanted w
         WHERE s.series_id = w.series_id AND s.ts_max >= w.lo AND s.ts_min < w.hi
        RETURNING s.series_id, s.ts_min, s.ts_step, s.ts_deltas, s.vals, s.vals_real,
                  s.vals_int, s.vals_decimals, s.run_ids)
    INSERT INTO points (ts, series_id, value, run_id)
    SELECT p.ts, seg.series_id, p.value, p.run_id
      FROM seg CROSS JOIN LATERAL wh_segment_points(seg.ts_min, seg.ts_step, seg.ts_deltas,
                                                    seg.vals, seg.vals_real, seg.vals_int,
                                                    seg.vals_decimals, seg.run_ids) p;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
DROP FUNCTION wh_forget_readings(timestamptz, timestamptz);
DROP TABLE readings;
DROP TABLE reading_chunks;
DROP SEQUENCE reading_copy_seq;
DROP TABLE reading_columns;
DROP TABLE reading_entities;
