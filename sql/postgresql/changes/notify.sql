-- Tell listeners (warehouse serve) what a write changed, delivered when its transaction
-- commits. Parameters: :payload (JSON of warehouse.changes.Change, < 8000 bytes).
SELECT pg_notify('warehouse_changes', :payload)
