-- 0012 down: every segment's values back in vals float8[] (integers and reals widen
-- exactly; decimals divide as wh_segment_points does), lz4 again, and the functions and
-- all_points as 0010 defined them.
DO $$
BEGIN
    ALTER TABLE points_compressed ALTER COLUMN ts_deltas SET COMPRESSION lz4;
    ALTER TABLE points_compressed ALTER COLUMN vals SET COMPRESSION lz4;
    ALTER TABLE points_compressed ALTER COLUMN run_ids SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 not available: segments use the default TOAST compression';
END
$$;
UPDATE points_compressed
   SET vals = CASE WHEN vals_real IS NOT NULL THEN vals_real::double precision[]
                   WHEN vals_decimals = 0 THEN vals_int::double precision[]
                   ELSE ARRAY(SELECT u.k / 10::double precision ^ vals_decimals
                                FROM unnest(vals_int) WITH ORDINALITY AS u(k, o)
                               ORDER BY u.o) END,
       vals_real = NULL, vals_int = NULL, vals_decimals = NULL
 WHERE vals IS NULL;

CREATE FUNCTION wh_segment_points(p_first timestamptz, p_step bigint, p_deltas bigint[],
                                  p_vals double precision[], p_runs uuid[])
RETURNS TABLE (ts timestamptz, value double precision, run_id uuid)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_first + ((u.o - 1) * p_step) * interval '1 microsecond', u.v, u.r
      FROM unnest(p_vals, p_runs) WITH ORDINALITY AS u(v, r, o)
     WHERE p_step IS NOT NULL
    UNION ALL
    SELECT p_first + (sum(u.d) OVER (ORDER BY u.o)) * interval '1 microsecond', u.v, u.r
      FROM unnest(p_deltas, p_vals, p_runs) WITH ORDINALITY AS u(d, v, r, o)
     WHERE p_step IS NULL
$$;

CREATE OR REPLACE VIEW all_points AS
SELECT ts, series_id, value, run_id FROM points
UNION ALL
SELECT s.ts, c.series_id, s.value, s.run_id
  FROM points_compressed c
 CROSS JOIN LATERAL wh_segment_points(c.ts_min, c.ts_step, c.ts_deltas, c.vals,
                                     c.run_ids) s;

CREATE OR REPLACE FUNCTION wh_compress_chunk(p_chunk text, p_segment integer DEFAULT 1000)
RETURNS TABLE (rows_compressed bigint, segments bigint, refused text)
LANGUAGE plpgsql AS $$
DECLARE
    v_start timestamptz;
    v_end   timestamptz;
    v_w     timestamptz;
    v_rows  bigint;
    v_segs  bigint;
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    SELECT c.range_start, c.range_end INTO v_start, v_end
      FROM wh_chunks c WHERE c.chunk_name = p_chunk AND c.hypertable = 'points';
    IF NOT FOUND THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, 'no such chunk'::text;
        RETURN;
    END IF;
    -- Writers into this chunk hold the same key shared (wh_decompress_for_write): none is
    -- between its decode and its insert while the chunk is encoded.
    PERFORM pg_advisory_xact_lock(hashtext('wh_compress:' || p_chunk));
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', p_chunk);
    SELECT watermark INTO v_w FROM rollup_watermarks WHERE rollup = 'points_1m';
    IF v_w IS NULL OR v_w < v_end THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, 'not rolled up yet: run refresh_rollups'::text;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM rollup_invalidations i
                WHERE i.range_start < v_end AND i.range_end > v_start) THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, 'late points not rolled up yet'::text;
        RETURN;
    END IF;
    EXECUTE format($q$
        WITH written AS (
        INSERT INTO points_compressed (series_id, ts_min, ts_max, n, min, max, sum, sum_sq,
                                       first_value, last_value, ts_step, ts_deltas, vals,
                                       run_ids)
        SELECT series_id, ts_min, ts_max, n, lo, hi, total, total_sq, vals[1], vals[n],
               CASE WHEN n = 1 THEN 0 WHEN gap_lo = gap_hi THEN gap_lo END,
               -- the segment's first delta is 0: its time is ts_min itself
               CASE WHEN n > 1 AND gap_lo <> gap_hi
                    THEN array_prepend(0::bigint, deltas[2:]) END,
               vals, runs
          FROM (SELECT series_id, min(ts) AS ts_min, max(ts) AS ts_max, count(*) AS n,
                       min(value) AS lo, max(value) AS hi, sum(value) AS total,
                       sum(value * value) AS total_sq,
                       min(d) FILTER (WHERE pos > 0) AS gap_lo,
                       max(d) FILTER (WHERE pos > 0) AS gap_hi,
                       array_agg(d ORDER BY ts) AS deltas,
                       array_agg(value ORDER BY ts) AS vals,
                       CASE WHEN count(run_id) > 0 THEN array_agg(run_id ORDER BY ts) END AS runs
                  FROM (SELECT series_id, ts, value, run_id, d, rn / %1$s AS seg,
                               rn %% %1$s AS pos
                          FROM (SELECT series_id, ts, value, run_id,
                                       -- date_part's float8 seconds, rounded, are exact µs
                                       -- for any gap inside a chunk and cost a third of
                                       -- extract's numeric
                                       coalesce(round(date_part('epoch', ts - lag(ts) OVER w)
                                                      * 1000000)::bigint, 0) AS d,
                                       row_number() OVER w - 1 AS rn
                                  FROM %2$I WINDOW w AS (PARTITION BY series_id ORDER BY ts)
                               ) numbered) r
                 GROUP BY series_id, seg) s
        RETURNING n)
        SELECT count(*), coalesce(sum(n), 0) FROM written$q$, p_segment, p_chunk)
    INTO v_segs, v_rows;
    EXECUTE format('TRUNCATE %I', p_chunk);
    RETURN QUERY SELECT v_rows, v_segs, NULL::text;
END
$$;

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
        RETURNING s.series_id, s.ts_min, s.ts_step, s.ts_deltas, s.vals, s.run_ids)
    INSERT INTO points (ts, series_id, value, run_id)
    SELECT p.ts, seg.series_id, p.value, p.run_id
      FROM seg CROSS JOIN LATERAL wh_segment_points(seg.ts_min, seg.ts_step, seg.ts_deltas,
                                                    seg.vals, seg.run_ids) p;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

DROP FUNCTION wh_segment_points(timestamptz, bigint, bigint[], double precision[], real[],
                                integer[], smallint, uuid[]);
ALTER TABLE points_compressed DROP CONSTRAINT points_compressed_one_value_form,
    DROP COLUMN vals_real, DROP COLUMN vals_int, DROP COLUMN vals_decimals,
    ALTER COLUMN vals SET NOT NULL;
