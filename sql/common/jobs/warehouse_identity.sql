-- The warehouse's identity (migration 0006): one row. Result: warehouse_id, created_at.
SELECT warehouse_id, created_at FROM warehouse_identity
