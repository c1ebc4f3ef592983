-- 0010 closed-chunk compression, PostgreSQL, down: segments are decoded back into points
-- first (nothing is lost), then the functions of 0001/0003/0006 and all_points as they were.
INSERT INTO points (ts, series_id, value, run_id)
SELECT p.ts, c.series_id, p.value, p.run_id
  FROM points_compressed c
 CROSS JOIN LATERAL wh_segment_points(c.ts_min, c.ts_step, c.ts_deltas, c.vals,
                                     c.run_ids) p;
CREATE OR REPLACE VIEW all_points AS SELECT ts, series_id, value, run_id FROM points;
DROP FUNCTION IF EXISTS wh_decompress_for_write(integer[], timestamptz[], timestamptz[]);
DROP FUNCTION IF EXISTS wh_compress_chunk(text, integer);
DROP FUNCTION IF EXISTS wh_segment_points(timestamptz, bigint, bigint[], double precision[],
                                          uuid[]);
DROP TABLE IF EXISTS points_compressed;
DROP TABLE IF EXISTS compression_policies;

CREATE OR REPLACE FUNCTION wh_drop_chunks(p_table text, p_older_than timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    v_name text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('wh_chunk:' || p_table));
    FOR v_name IN
        SELECT c.chunk_name FROM wh_chunks c
         WHERE c.hypertable = p_table AND c.range_end <= p_older_than ORDER BY c.range_start
    LOOP
        EXECUTE format('DROP TABLE %I', v_name);
        DELETE FROM wh_chunks WHERE chunk_name = v_name;
        RETURN NEXT v_name;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION wh_retention_drop(p_table text, p_start timestamptz, p_end timestamptz,
                                  p_metric text, p_archive boolean,
                                  p_now timestamptz DEFAULT now())
RETURNS TABLE (removed bigint, refused text)
LANGUAGE plpgsql AS $$
DECLARE
    v_chunk text;
    v_rows bigint;
    v_w timestamptz;
    m archive_manifest%ROWTYPE;
    v_found boolean;
BEGIN
    -- A long reader of the chunk must not make retention (and everyone queued behind its
    -- lock request) wait indefinitely: give up after a while; the runner retries later.
    PERFORM set_config('lock_timeout', '10s', true);
    PERFORM pg_advisory_xact_lock(hashtext('wh_chunk:' || p_table));
    IF p_metric = '*' THEN
        SELECT c.chunk_name INTO v_chunk FROM wh_chunks c
         WHERE c.hypertable = p_table AND c.range_start = p_start AND c.range_end = p_end;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 0::bigint, 'no such chunk'::text;
            RETURN;
        END IF;
    END IF;
    -- Ingest holds the manifest rows of the units it writes into FOR SHARE: lock before
    -- counting so that a concurrent write is either counted or refused (it sees dropped_at).
    SELECT * INTO m FROM archive_manifest a
     WHERE a.table_name = p_table AND a.chunk_start = p_start AND a.metric = p_metric FOR UPDATE;
    v_found := FOUND;
    IF v_found AND m.hold_until > p_now THEN
        RETURN QUERY SELECT 0::bigint, format('restored; held until %s', m.hold_until);
        RETURN;
    END IF;
    IF p_metric = '*' THEN
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', v_chunk);
        EXECUTE format('SELECT count(*) FROM %I', v_chunk) INTO v_rows;
    ELSE
        SELECT count(*) INTO v_rows FROM points p
         WHERE p.ts >= p_start AND p.ts < p_end
           AND p.series_id IN (SELECT s.series_id FROM series s WHERE s.metric = p_metric);
    END IF;
    IF v_rows = 0 THEN  -- nothing to lose: an empty chunk goes whatever the policy
        IF p_metric = '*' THEN
            EXECUTE format('DROP TABLE %I', v_chunk);
            DELETE FROM wh_chunks WHERE chunk_name = v_chunk;
        END IF;
        RETURN QUERY SELECT 0::bigint, NULL::text;
        RETURN;
    END IF;
    IF p_archive AND NOT v_found THEN
        RETURN QUERY SELECT 0::bigint, 'not archived yet'::text;
        RETURN;
    END IF;
    IF p_archive AND NOT m.verified THEN
        RETURN QUERY SELECT 0::bigint, 'archive not verified'::text;
        RETURN;
    END IF;
    IF p_archive AND (m.rows <> v_rows OR m.dropped_at IS NOT NULL) THEN
        RETURN QUERY SELECT 0::bigint,
            format('manifest has %s rows, the chunk %s: archive again first', m.rows, v_rows);
        RETURN;
    END IF;
    IF p_table = 'points' THEN
        SELECT watermark INTO v_w FROM rollup_watermarks WHERE rollup = 'points_1m';
        IF v_w IS NULL OR v_w < p_end THEN
            RETURN QUERY SELECT 0::bigint, 'not rolled up yet: run refresh_rollups'::text;
            RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM rollup_invalidations i
                    WHERE i.range_start < p_end AND i.range_end > p_start
                      AND (p_metric = '*' OR i.series_id IN (
                           SELECT s.series_id FROM series s WHERE s.metric = p_metric))) THEN
            RETURN QUERY SELECT 0::bigint, 'late points not rolled up yet'::text;
            RETURN;
        END IF;
    END IF;

    IF p_metric = '*' THEN
        EXECUTE format('DROP TABLE %I', v_chunk);
        DELETE FROM wh_chunks WHERE chunk_name = v_chunk;
    ELSE
        DELETE FROM points p
         WHERE p.ts >= p_start AND p.ts < p_end
           AND p.series_id IN (SELECT s.series_id FROM series s WHERE s.metric = p_metric);
    END IF;
    -- A manifest row that still describes the rows (also under a policy that no longer
    -- archives) now stands for them: queries and restore read it from here on.
    UPDATE archive_manifest a SET dropped_at = p_now, hold_until = NULL
     WHERE a.table_name = p_table AND a.chunk_start = p_start AND a.metric = p_metric
       AND a.verified AND a.rows = v_rows AND a.dropped_at IS NULL;
    RETURN QUERY SELECT v_rows, NULL::text;
END
$$;


CREATE OR REPLACE FUNCTION wh_apply_retention(p_now timestamptz DEFAULT now()) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    u record;
    v_total bigint := 0;
    v_n bigint;
BEGIN
    FOR u IN SELECT * FROM wh_retention_units(p_now) r
              ORDER BY r.chunk_start, r.table_name, r.metric = '*', r.metric LOOP
        IF u.metric = '*' AND NOT u.archive AND u.table_name = 'points' AND EXISTS (
            SELECT 1 FROM retention_policies q JOIN series s ON s.metric = q.metric
             WHERE q.table_name = 'points' AND q.metric <> '*' AND q.archive
               AND EXISTS (SELECT 1 FROM points x
                            WHERE x.series_id = s.series_id
                              AND x.ts >= u.chunk_start AND x.ts < u.chunk_end)) THEN
            CONTINUE;
        END IF;
        SELECT d.removed INTO v_n
          FROM wh_retention_drop(u.table_name, u.chunk_start, u.chunk_end, u.metric,
                                 u.archive, p_now) d;
        v_total := v_total + coalesce(v_n, 0);
    END LOOP;
    RETURN v_total;
END
$$;
