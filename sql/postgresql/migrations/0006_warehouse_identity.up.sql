-- 0006: the warehouse's identity. One row, made once: a database (not a URL or a folder) is
-- one warehouse. Archive files are written under <archive root>/<warehouse_id>/ and every
-- manifest row records the warehouse that wrote its file, so two warehouses sharing an
-- archive folder never write to, or read, each other's files.
-- gen_random_uuid() is built in since PostgreSQL 13 (no pgcrypto needed).
CREATE TABLE warehouse_identity (
    one_row      boolean     PRIMARY KEY DEFAULT true CHECK (one_row),
    warehouse_id uuid        NOT NULL,
    created_at   timestamptz NOT NULL
);
INSERT INTO warehouse_identity (one_row, warehouse_id, created_at)
VALUES (true, gen_random_uuid(), now());
-- Files archived before this revision were written by this database: they are its own
-- (under their old relative paths, which still resolve).
ALTER TABLE archive_manifest ADD COLUMN warehouse_id uuid;
UPDATE archive_manifest SET warehouse_id = (SELECT warehouse_id FROM warehouse_identity);

-- The SQL-only retention (what pg_cron runs) obeys the rule of warehouse/jobs/chunk_policy.py
-- that its per-unit guard cannot see: a chunk-wide unit whose own policy does not archive
-- still holds rows of metrics whose policy does, and those rows may leave only through
-- their own, archived, units. Per chunk, metric units now run first (as in the warehouse's
-- retention job); a chunk-wide unit is skipped while such rows remain (the next run takes
-- it once they are archived and gone).
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
