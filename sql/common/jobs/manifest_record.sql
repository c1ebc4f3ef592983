-- Job archive: record a freshly written file for a unit, not yet verified. Replaces the row
-- of an earlier version of the unit (only units still hot are ever rewritten). The file
-- itself is never replaced: a new version has a new name (its content hash).
-- :warehouse_id is the writer's identity (warehouse_identity), recorded with the file.
INSERT INTO archive_manifest (table_name, chunk_name, chunk_start, chunk_end, metric, root,
                              path, rows, min_ts, max_ts, bytes, sha256, verified,
                              archived_at, verified_at, dropped_at, hold_until, warehouse_id)
VALUES (:table, :chunk_name, :start, :end, :metric, :root, :path, :rows, :min_ts, :max_ts,
        :bytes, :sha256, false, :now, NULL, NULL, NULL, CAST(:warehouse_id AS UUID))
ON CONFLICT (table_name, chunk_start, metric) DO UPDATE SET
    chunk_name = excluded.chunk_name, chunk_end = excluded.chunk_end, root = excluded.root,
    path = excluded.path, rows = excluded.rows, min_ts = excluded.min_ts,
    max_ts = excluded.max_ts, bytes = excluded.bytes, sha256 = excluded.sha256,
    verified = false, archived_at = excluded.archived_at, verified_at = NULL,
    hold_until = NULL, warehouse_id = excluded.warehouse_id
