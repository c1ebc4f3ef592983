-- 0018 up: the compress job, faster on PostgreSQL (issue 15; docs/jobs.md "Compression").
-- A day of TSBS (8.64M points) took ~10 s: encoding ~4.2, the DELETE that empties the chunk
-- ~3, the pivoted copy ~1.9 and the VACUUM afterwards ~1.5 (per-statement durations,
-- auto_explain, quiet machine). Two of those shrink here; the encoder and the DELETE, which
-- keeps older snapshots reading the rows (0015), are unchanged.

-- After the job's transaction commits: empty the chunk p_chunk by TRUNCATE instead of
-- VACUUM + REINDEX when no one can read its deleted rows any more, and return whether it did
-- (false: the caller vacuums as before). TRUNCATE is not MVCC-safe (0015): a snapshot taken
-- before it would see the chunk empty. It is safe here only when
--   * the chunk holds no row visible now, under an ACCESS EXCLUSIVE lock (no writer is
--     between its insert and its commit), read with a new snapshot (READ COMMITTED only);
--   * no other session of this database holds a snapshot older than this one's xmax: every
--     row ever deleted from the chunk was deleted by a transaction that had ended by then,
--     so every other snapshot already sees it deleted (pg_stat_activity.backend_xmin; the
--     role must see every session: superuser or pg_read_all_stats);
--   * no standby could hold such a snapshot: no replication slot, no WAL sender, no WAL
--     archiving. (A streaming standby without a slot that is disconnected at this instant is
--     not seen: its queries older than the job could read the chunk empty after replaying
--     the TRUNCATE, where VACUUM's replay would have cancelled them.)
-- Otherwise, or when the lock is not granted within 0.5 s (readers of the day queue behind
-- the request meanwhile), it changes nothing. Old snapshots are looked for before the lock
-- too, so a long reader costs no wait. ANALYZE afterwards records the chunk as empty
-- (TRUNCATE leaves it "never analysed", which the planner guesses at ten pages).
CREATE FUNCTION wh_older_snapshots() RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    -- whether another session of this database holds a snapshot older than this
    -- statement's xmax (backend_xmin is an xid: compared by age, as wraparound requires)
    SELECT EXISTS (
        SELECT 1 FROM pg_stat_activity a
         WHERE a.pid <> pg_backend_pid() AND a.datname = current_database()
           AND a.backend_xmin IS NOT NULL
           AND age(a.backend_xmin) > age((pg_snapshot_xmax(pg_current_snapshot())::text::numeric
                                          % 4294967296)::text::xid))
$$;

CREATE FUNCTION wh_reclaim_chunk(p_chunk text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_rows boolean;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed'
       OR NOT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
       OR EXISTS (SELECT 1 FROM pg_replication_slots)
       OR EXISTS (SELECT 1 FROM pg_stat_replication)
       OR current_setting('archive_mode') <> 'off'
       OR wh_older_snapshots() THEN
        RETURN false;
    END IF;
    -- pg_stat_activity is read once per transaction: read it again after the lock
    PERFORM pg_stat_clear_snapshot();
    PERFORM set_config('lock_timeout', '500ms', true);
    BEGIN
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', p_chunk);
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;
    END;
    -- each statement below takes a new snapshot, after the lock
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', p_chunk) INTO v_rows;
    IF v_rows OR wh_older_snapshots() THEN
        RETURN false;
    END IF;
    EXECUTE format('TRUNCATE %I', p_chunk);
    EXECUTE format('ANALYZE %I', p_chunk);
    RETURN true;
END
$$;

DROP FUNCTION wh_copy_readings(timestamptz, timestamptz, timestamptz, integer, integer);
-- As 0017's, but for p_hot_rows: false when the caller knows the range holds no hot row
-- (the compress job, which has just emptied the chunk in this transaction). Each look at
-- `points` then goes: the emptied chunk still holds every deleted row until it is vacuumed,
-- and each of the three scans read them all (~0.16 s each for TSBS's day). The copy of the
-- segments alone is the same rows either way.
CREATE FUNCTION wh_copy_readings(p_start timestamptz, p_end timestamptz, p_now timestamptz,
                                 p_max_columns integer, p_segment integer DEFAULT 1000,
                                 p_hot_rows boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_cols    integer[];
    v_top     integer;
    v_copied  boolean;
    v_rows    bigint := 0;
    v_points  text;
    v_pivot   text;
    v_arrays  text;
    v_names   text;
    v_bounds  text;
    v_seg_bounds text;
    v_seg_vals   text;
BEGIN
    PERFORM set_config('work_mem', '128MB', true);
    PERFORM set_config('jit', 'off', true);
    -- one numbering of label sets and metrics at a time
    PERFORM pg_advisory_xact_lock(hashtext('wh_readings'));
    CREATE TEMP TABLE _wh_range_series ON COMMIT DROP AS
    SELECT s.series_id, s.metric, s.labels_key FROM series s
     WHERE s.series_id IN (SELECT c.series_id FROM points_compressed c
                            WHERE c.ts_min >= p_start AND c.ts_min < p_end
                           UNION
                           SELECT p.series_id FROM points p
                            WHERE p_hot_rows AND p.ts >= p_start AND p.ts < p_end);
    INSERT INTO reading_entities (labels_key, entity)
    SELECT k.labels_key, (SELECT coalesce(max(entity), 0) FROM reading_entities)
                         + row_number() OVER (ORDER BY k.labels_key)
      FROM (SELECT DISTINCT labels_key FROM _wh_range_series) k
     WHERE NOT EXISTS (SELECT 1 FROM reading_entities e WHERE e.labels_key = k.labels_key);
    INSERT INTO reading_columns (metric, col)
    SELECT k.metric, (SELECT coalesce(max(col), 0) FROM reading_columns)
                     + row_number() OVER (ORDER BY k.metric)
      FROM (SELECT DISTINCT metric FROM _wh_range_series) k
     WHERE NOT EXISTS (SELECT 1 FROM reading_columns c WHERE c.metric = k.metric);
    SELECT array_agg(c.col ORDER BY c.col) INTO v_cols FROM reading_columns c
     WHERE c.metric IN (SELECT metric FROM _wh_range_series);
    v_top := coalesce((SELECT max(col) FROM reading_columns), 0);
    v_copied := v_cols IS NOT NULL AND v_top <= p_max_columns;

    DELETE FROM readings WHERE ts_min >= p_start AND ts_min < p_end;
    IF v_copied THEN
        -- Only a missing column is added: ALTER TABLE waits for every reader of readings
        -- (ACCESS EXCLUSIVE), even with IF NOT EXISTS.
        FOR i IN 1 .. cardinality(v_cols) LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_attribute
                            WHERE attrelid = 'readings'::regclass
                              AND attname = format('m%s', v_cols[i]) AND NOT attisdropped) THEN
                EXECUTE format('ALTER TABLE readings ADD COLUMN m%s double precision[] '
                               'COMPRESSION pglz', v_cols[i]);
            END IF;
        END LOOP;
        -- Text built from integers only (column numbers).
        SELECT string_agg(format('max(value) FILTER (WHERE col = %s) AS m%s', c, c), ', '),
               string_agg(format('array_agg(m%s ORDER BY ts) AS m%s', c, c), ', '),
               string_agg(format('m%s', c), ', ')
          INTO v_pivot, v_arrays, v_names FROM unnest(v_cols) AS c;
        SELECT 'ARRAY[' || string_agg(CASE WHEN c = ANY (v_cols) THEN format('%s(m%s)', '%1$s', c)
                                           ELSE 'NULL::double precision' END, ', ' ORDER BY c)
               || ']'
          INTO v_bounds FROM generate_series(1, v_top) AS c;
        SELECT 'ARRAY[' || string_agg(CASE WHEN c = ANY (v_cols)
                                           THEN format('%%1$s(pc.%%1$s) FILTER (WHERE rc.col = %s)', c)
                                           ELSE 'NULL::double precision' END, ', ' ORDER BY c)
               || ']',
               string_agg(format('max(wh_segment_values(pc.vals, pc.vals_real, pc.vals_int, '
                                 'pc.vals_decimals)) FILTER (WHERE rc.col = %s) AS m%s', c, c),
                          ', ') FILTER (WHERE c = ANY (v_cols))
          INTO v_seg_bounds, v_seg_vals FROM generate_series(1, v_top) AS c;

        -- Label sets whose metrics' segments line up (the same instants, cut the same way:
        -- fields written together, as a scraper's or TSBS's): a copy row is their segments'
        -- values side by side and their own min/max, with nothing decoded and pivoted
        -- (TSBS's day: ~2 s instead of ~16). Only when the range holds no hot row (the
        -- encoder has just emptied it); the other label sets take the general way below.
        CREATE TEMP TABLE _wh_aligned ON COMMIT DROP AS
        SELECT g.entity FROM (
            SELECT e.entity, pc.ts_min, count(*) AS k,
                   count(DISTINCT ROW(pc.ts_max, pc.n, pc.ts_step, pc.ts_deltas)) AS forms
              FROM points_compressed pc
              JOIN _wh_range_series r ON r.series_id = pc.series_id
              JOIN reading_entities e ON e.labels_key = r.labels_key
             WHERE pc.ts_min >= p_start AND pc.ts_min < p_end
             GROUP BY e.entity, pc.ts_min) g
         WHERE NOT (p_hot_rows AND EXISTS (SELECT 1 FROM points p
                                            WHERE p.ts >= p_start AND p.ts < p_end))
         GROUP BY g.entity
        HAVING bool_and(g.forms = 1) AND min(g.k) = max(g.k)
           AND max(g.k) = (SELECT count(*) FROM _wh_range_series r
                             JOIN reading_entities e ON e.labels_key = r.labels_key
                            WHERE e.entity = g.entity);
        EXECUTE format($q$
            INSERT INTO readings (entity, ts_min, ts_max, n, ts_step, ts_offsets, lo, hi, %1$s)
            SELECT e.entity, pc.ts_min, max(pc.ts_max), max(pc.n), max(pc.ts_step),
                   CASE WHEN max(pc.ts_step) IS NULL THEN ARRAY(
                        SELECT (sum(u.d) OVER (ORDER BY u.o))::bigint
                          FROM unnest(max(pc.ts_deltas)) WITH ORDINALITY AS u(d, o)
                         ORDER BY u.o) END,
                   %2$s, %3$s, %4$s
              FROM points_compressed pc
              JOIN _wh_range_series r ON r.series_id = pc.series_id
              JOIN reading_entities e ON e.labels_key = r.labels_key
              JOIN reading_columns rc ON rc.metric = r.metric
             WHERE pc.ts_min >= $1 AND pc.ts_min < $2
               AND e.entity IN (SELECT entity FROM _wh_aligned)
             GROUP BY e.entity, pc.ts_min$q$,
            v_names, format(v_seg_bounds, 'min'), format(v_seg_bounds, 'max'), v_seg_vals)
            USING p_start, p_end;
        DELETE FROM _wh_range_series r USING reading_entities e
         WHERE e.labels_key = r.labels_key AND e.entity IN (SELECT entity FROM _wh_aligned);
        v_points := CASE WHEN p_hot_rows THEN $q$
            SELECT p.ts, p.series_id, p.value FROM points p WHERE p.ts >= $1 AND p.ts < $2
            UNION ALL$q$ ELSE '' END || $q$
            SELECT d.ts, c.series_id, d.value
              FROM points_compressed c
             CROSS JOIN LATERAL wh_segment_points(c.ts_min, c.ts_step, c.ts_deltas, c.vals,
                                                 c.vals_real, c.vals_int, c.vals_decimals,
                                                 c.run_ids) d
             WHERE c.ts_min >= $1 AND c.ts_min < $2
               AND c.series_id IN (SELECT series_id FROM _wh_range_series)$q$;
        -- Instants as µs after the range's start (only their differences are used), from
        -- date_part's float8 seconds of that short interval, rounded: exact. (Seconds since
        -- the epoch as float8 miss µs before 1833 and after 2106, and ingest takes years 1
        -- to 9999.) A segment is regular when its least and greatest gap are equal.
        -- Nothing to do when every label set was aligned (TSBS's day).
        IF EXISTS (SELECT 1 FROM _wh_range_series) THEN
        EXECUTE format($q$
            INSERT INTO readings (entity, ts_min, ts_max, n, ts_step, ts_offsets, lo, hi, %1$s)
            SELECT entity, ts_min, ts_max, n,
                   CASE WHEN n = 1 THEN 0 WHEN gap_lo = gap_hi THEN gap_lo END,
                   CASE WHEN n > 1 AND gap_lo <> gap_hi
                        THEN ARRAY(SELECT u - us[1] FROM unnest(us) AS u) END,
                   lo, hi, %1$s
              FROM (SELECT entity, min(ts) AS ts_min, max(ts) AS ts_max, count(*) AS n,
                           array_agg(us ORDER BY ts) AS us,
                           min(gap) FILTER (WHERE o > 1) AS gap_lo,
                           max(gap) FILTER (WHERE o > 1) AS gap_hi,
                           %2$s AS lo, %3$s AS hi, %4$s
                      FROM (SELECT w.*, us - lag(us) OVER e AS gap,
                                   row_number() OVER e AS o
                              FROM (SELECT v.*,
                                           round(date_part('epoch', ts - $1) * 1000000)::bigint AS us,
                                           (row_number() OVER (PARTITION BY entity ORDER BY ts)
                                            - 1) / $3 AS seg
                                      FROM (SELECT e.entity, p.ts, %5$s
                                              FROM (%6$s) p
                                              JOIN _wh_range_series s USING (series_id)
                                              JOIN reading_entities e USING (labels_key)
                                              JOIN reading_columns c USING (metric)
                                             GROUP BY e.entity, p.ts) v) w
                            WINDOW e AS (PARTITION BY entity, seg ORDER BY ts)) x
                     GROUP BY entity, seg) g$q$,
            v_names, format(v_bounds, 'min'), format(v_bounds, 'max'), v_arrays, v_pivot,
            v_points) USING p_start, p_end, p_segment;
        END IF;
        SELECT coalesce(sum(n), 0) INTO v_rows FROM readings
         WHERE ts_min >= p_start AND ts_min < p_end;
    END IF;
    -- Copies of other ranges overlapping this one (made before the chunk interval changed)
    -- lost rows to the rewrite: no longer complete.
    DELETE FROM reading_chunks WHERE chunk_start < p_end AND chunk_end > p_start;
    INSERT INTO reading_chunks (chunk_start, chunk_end, copied, copied_at, copy_no)
    VALUES (p_start, p_end, v_copied, p_now, nextval('reading_copy_seq'));
    RETURN v_rows;
END
$$;
