-- Pass a value to the DO block that follows in the same transaction (DO takes no binds).
-- Parameters: :name (a custom setting such as wh.readonly_role), :value.
SELECT set_config(:name, :value, true)
