-- One user with its password hash (for login). Params: :name.
-- Result: name, role, password_hash, created_at, password_changed_at.
SELECT name, role, password_hash, created_at, password_changed_at
FROM users WHERE name = :name
