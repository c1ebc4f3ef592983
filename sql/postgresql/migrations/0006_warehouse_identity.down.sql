-- 0006 down: forget the identity. Archive files stay where they are; the manifest keeps
-- their paths (relative to the archive root), so they still resolve. wh_apply_retention
-- goes back to its 0003 definition.
ALTER TABLE archive_manifest DROP COLUMN IF EXISTS warehouse_id;
DROP TABLE IF EXISTS warehouse_identity;

CREATE OR REPLACE FUNCTION wh_apply_retention(p_now timestamptz DEFAULT now()) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    u record;
    v_total bigint := 0;
    v_n bigint;
BEGIN
    FOR u IN SELECT * FROM wh_retention_units(p_now) LOOP
        SELECT d.removed INTO v_n
          FROM wh_retention_drop(u.table_name, u.chunk_start, u.chunk_end, u.metric,
                                 u.archive, p_now) d;
        v_total := v_total + coalesce(v_n, 0);
    END LOOP;
    RETURN v_total;
END
$$;
