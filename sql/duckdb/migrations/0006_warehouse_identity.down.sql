-- 0006 down: forget the identity. Archive files stay where they are; the manifest keeps
-- their paths (relative to the archive root), so they still resolve.
ALTER TABLE archive_manifest DROP COLUMN warehouse_id;
DROP TABLE IF EXISTS warehouse_identity;
