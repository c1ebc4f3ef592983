-- Replace a user's password hash. Params: :name, :password_hash, :now.
UPDATE users SET password_hash = :password_hash, password_changed_at = :now
WHERE name = :name
