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
