-- Subscribe this session to the change notifications sent by changes/notify.sql.
LISTEN warehouse_changes
